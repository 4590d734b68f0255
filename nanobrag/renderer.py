"""The renderer: the one place that walks the detector in chunks and assembles the image.

Pixels are processed in chunks, in nanoBragg's order (slow rows, then fast columns), so memory is
bounded by a working-memory budget rather than by the detector size. Each chunk is one call of
:func:`nanobrag.kernel.evaluate_chunk`, which handles every other sampling axis (layers, sub-pixels,
sources, orientations) as tensor dimensions; how that call is executed (eagerly, or as a compiled
kernel) is chosen by :mod:`nanobrag.compiled`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import torch
from torch.utils import _pytree as pytree
from torch.utils.checkpoint import checkpoint

from .beam import R_E_SQUARED, polarization_frame
from .compiled import ChunkFunction, chunk_function, eager_chunk
from .config import SimulationConfig
from .detector import detector_frame
from .kernel import ChunkResult, KernelInputs, KernelVariant, evaluate_chunk
from .setup import Device, Setup, build_setup
from .structure import StructureTable

# Working memory for one chunk's intermediates (bytes); NANOBRAG_MEMORY_BUDGET_MB overrides it.
DEFAULT_MEMORY_BUDGET = int(float(os.environ.get("NANOBRAG_MEMORY_BUDGET_MB", 64)) * 2**20)
# Peak bytes of intermediates per evaluation (scattering vector x orientation), per byte of dtype:
# the eager path keeps a few dozen full-size temporaries alive, a compiled kernel a few.
EAGER_TEMPORARIES = 16
FUSED_TEMPORARIES = 4
# A compiled kernel streams best through cache-sized chunks; larger ones gain nothing.
FUSED_MAX_EVALUATIONS = 1 << 18

Progress = Callable[[int, int], None]  # (evaluations done, evaluations in total)


def simulate(
    config: SimulationConfig,
    *,
    params: dict[str, torch.Tensor] | None = None,
    dtype: torch.dtype | None = None,
    device: Device = None,
    kernel: str = "auto",
) -> torch.Tensor:
    """Render the image of ``config``: :func:`nanobrag.setup.build_setup`, then :func:`render`.

    Convention: photons per pixel, as nanoBragg's float image; slow axis first.

    Args:
        config: the simulation settings.
        params: tensors replacing continuous settings (:data:`nanobrag.setup.PARAMETERS`); the image
            is differentiable with respect to each.
        dtype: the computation's dtype (default: the parameters', else float64).
        device: the computation's device (default: the parameters', else CPU).
        kernel: "auto", "eager" or "fused" (arch.md section 6).

    Returns:
        The image, shape (spixels, fpixels), on ``dtype`` and ``device``.

    Raises:
        InputError: from :func:`nanobrag.setup.build_setup`.

    Example:
        >>> from nanobrag.fixtures import triclinic_fixture
        >>> image = simulate(triclinic_fixture(), dtype=torch.float32)
        >>> image.shape, image.dtype, bool(image.sum() > 0)
        (torch.Size([16, 16]), torch.float32, True)
    """
    return render(build_setup(config, params=params, dtype=dtype, device=device), kernel=kernel)


def roi_bounds(setup: Setup) -> tuple[int, int, int, int]:
    """Inclusive (first row, last row, first column, last column) that nanoBragg renders."""
    spixels, fpixels = setup.shape_2d
    xmin, xmax, ymin, ymax = setup.roi
    return max(ymin, 0), min(ymax, spixels - 1), max(xmin, 0), min(xmax, fpixels - 1)


def evaluations_per_pixel(setup: Setup) -> int:
    """Scattering vectors x orientations evaluated for each pixel."""
    phisteps, domains = setup.orientations.shape[:2]
    return setup.sensor.steps * setup.oversample**2 * setup.sources.count * phisteps * domains


def render(
    setup: Setup,
    *,
    kernel: str = "auto",
    compile: bool = False,
    memory_budget: int | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Photons per pixel, shape (spixels, fpixels); zero outside the region of interest and on masked pixels.

    ``kernel`` chooses how each chunk is evaluated: ``"eager"`` (the reference: plain PyTorch
    operations), ``"fused"`` (a compiled kernel, built once and cached, see
    :mod:`nanobrag.compiled`) or ``"auto"`` (fused where a compiled kernel is ready or pays for
    itself, eager otherwise). ``compile=True`` is the older spelling of ``kernel="fused"``.
    NANOBRAGG_DISABLE_COMPILE=1 forces the eager path whatever is asked (gradient tests rely on it).
    ``memory_budget`` (bytes) bounds one chunk's working memory. ``progress(done, total)`` is called
    after every chunk with counts of evaluations.
    """
    per_pixel = evaluations_per_pixel(setup)
    count = _pixel_count(setup)
    if count == 0:
        return torch.zeros(setup.shape_2d, dtype=setup.dtype, device=setup.device)
    grad = _needs_grad([setup])
    mode = "fused" if compile else kernel
    run_chunk, fused = chunk_function(render_variants(setup), setup.dtype, setup.device, mode, grad, count * per_pixel)

    def evaluate(variant: KernelVariant, slow: torch.Tensor, fast: torch.Tensor, inputs: KernelInputs) -> ChunkResult:
        # The stale first sweep touches one chunk of a run: not worth a compiled kernel of its own.
        result = (eager_chunk if variant.stale_start else run_chunk)(variant, slow, fast, inputs)
        return ChunkResult(result.photons[None], result.interpolating, result.stale_pending)

    chunk = _chunk_pixels(setup, per_pixel, fused, memory_budget)
    return _render_group([setup], evaluate, kernel_inputs(setup), chunk, grad, progress)[0]


def render_batch(
    setups: Sequence[Setup],
    *,
    memory_budget: int | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Images of several setups at once, shape (batch, spixels, fpixels): a leading batch axis.

    The setups may differ in any continuous value (cell, orientation, crystal size, wavelength,
    detector distance and rotations, beam centre, fluence...); they share the detector size, the
    region of interest and mask, and the sampling counts (sub-pixels, layers, sources, phi steps,
    mosaic domains, structure-factor table shape). Setups that also share their kernel variant are
    evaluated together, chunk by chunk, by the kernel vectorised over the batch (``torch.func.vmap``)
    with one memory budget for the whole batch; a run whose state changes between chunks (sticky
    tricubic interpolation that may switch off, the stale phi-0 first sweep) is rendered on its own,
    as :func:`render` would. Each image equals ``render(setup, kernel="eager")`` to round-off, and
    gradients reach every setup's parameters as they would singly.
    """
    if not setups:
        raise ValueError("render_batch needs at least one setup")
    first = setups[0]
    for index, setup in enumerate(setups[1:], start=1):
        difference = batch_difference(first, setup)
        if difference:
            raise ValueError(f"setup {index} differs from setup 0 in {difference}: they cannot share a batch")
    images: dict[int, torch.Tensor] = {}
    groups: dict[KernelVariant, list[int]] = {}
    for index, setup in enumerate(setups):
        if _stateful(setup):
            images[index] = render(setup, kernel="eager", memory_budget=memory_budget, progress=progress)
        else:
            groups.setdefault(kernel_variant(setup, _initial_state(setup)), []).append(index)
    for members in groups.values():
        group = [setups[index] for index in members]
        per_pixel = evaluations_per_pixel(first) * len(group)
        chunk = _chunk_pixels(first, per_pixel, False, memory_budget)
        # every tensor of the setups' inputs stacked along a new leading (batch) axis
        inputs = pytree.tree_map(lambda *leaves: torch.stack(leaves), *[kernel_inputs(setup) for setup in group])
        rendered = _render_group(group, _batched_chunk, inputs, chunk, _needs_grad(group), progress)
        for position, index in enumerate(members):
            images[index] = rendered[position]
    return torch.stack([images[index] for index in range(len(setups))])


_vmapped_chunk = torch.func.vmap(evaluate_chunk, in_dims=(None, None, None, 0))


def _batched_chunk(variant: KernelVariant, slow: torch.Tensor, fast: torch.Tensor, inputs: KernelInputs) -> ChunkResult:
    """The eager kernel over a leading batch axis of ``inputs``; photons (batch, pixels)."""
    photons, _, _ = _vmapped_chunk(variant, slow, fast, inputs)
    off = torch.zeros((), dtype=torch.bool, device=photons.device)  # batched setups are stateless
    return ChunkResult(photons, off, off)


def _render_group(
    setups: Sequence[Setup],
    evaluate: Callable[[KernelVariant, torch.Tensor, torch.Tensor, KernelInputs], ChunkResult],
    inputs: KernelInputs,
    chunk: int,
    grad: bool,
    progress: Progress | None,
) -> torch.Tensor:
    """Images (batch, spixels, fpixels) of setups that share detector, region, mask and variant.

    ``evaluate`` returns photons (batch, pixels) for one chunk.
    """
    setup, batch = setups[0], len(setups)
    spixels, fpixels = setup.shape_2d
    row0, row1, col0, col1 = roi_bounds(setup)
    height, width = row1 - row0 + 1, col1 - col0 + 1
    image = torch.zeros(batch, spixels, fpixels, dtype=setup.dtype, device=setup.device)
    if height <= 0 or width <= 0:
        return image
    # The pixels nanoBragg evaluates, in its order: the region of interest less the masked pixels
    # (never evaluated: the run-wide state below depends on which pixels are).
    selected = None
    if setup.mask is not None:
        selected = torch.nonzero(setup.mask[row0 : row1 + 1, col0 : col1 + 1].reshape(-1)).squeeze(1)
    count = height * width if selected is None else selected.numel()
    total = count * evaluations_per_pixel(setup) * batch
    state = _initial_state(setup)
    # Without autograd, chunks are written straight into the image (no copies); with it, they are
    # gathered and placed once at the end so that autograd sees every chunk.
    full = selected is None and width == fpixels
    block = image[:, row0 : row1 + 1].view(batch, -1) if full else image.new_zeros(batch, height * width)
    pieces: list[torch.Tensor] = []
    several = count > chunk
    chunks = _pixel_chunks(row0, col0, height, width, chunk, setup.device, selected)
    for done, (where, slow, fast) in enumerate(chunks):
        variant = kernel_variant(setup, state)
        result = _evaluate(evaluate, variant, slow, fast, inputs, checkpointed=grad and several)
        state = RunState(
            interpolating=state.interpolating and bool(result.interpolating),
            stale_pending=state.stale_pending and bool(result.stale_pending),
        )
        if grad:
            pieces.append(result.photons)
        else:
            block[:, where] = result.photons
        if progress is not None:
            progress(min((done + 1) * chunk, count) * total // count, total)
    if full and not grad:
        return image
    if grad:
        values = torch.cat(pieces, dim=1) if pieces else block[:, :0]
        block = values if selected is None else torch.zeros_like(block).index_copy(1, selected, values)
    block = block.view(batch, height, width)
    return torch.nn.functional.pad(block, (col0, fpixels - 1 - col1, row0, spixels - 1 - row1))


def _initial_state(setup: Setup) -> RunState:
    return RunState(
        interpolating=setup.structure.interpolate and setup.structure.table is not None,
        stale_pending=setup.first_evaluation_orientations is not None,
    )


def _pixel_count(setup: Setup) -> int:
    """Pixels nanoBragg evaluates: the region of interest less the masked pixels."""
    row0, row1, col0, col1 = roi_bounds(setup)
    if row1 < row0 or col1 < col0:
        return 0
    if setup.mask is None:
        return (row1 - row0 + 1) * (col1 - col0 + 1)
    return int(setup.mask[row0 : row1 + 1, col0 : col1 + 1].sum())


def _needs_grad(setups: Sequence[Setup]) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for s in setups for t in _parameters(s))


def _stateful(setup: Setup) -> bool:
    """Whether the kernel variant of ``setup`` can change from chunk to chunk (nanoBragg's run-wide state)."""
    sticky_tricubic = setup.structure.interpolate and setup.structure.table is not None and setup.structure.sticky
    return sticky_tricubic or setup.first_evaluation_orientations is not None


def batch_difference(a: Setup, b: Setup) -> str | None:
    """What keeps two setups out of one :func:`render_batch` (None: nothing)."""
    checks = {
        "detector size": (a.shape_2d, b.shape_2d),
        "region of interest": (roi_bounds(a), roi_bounds(b)),
        "dtype": (a.dtype, b.dtype),
        "device": (a.device, b.device),
        "sensor layers": (a.sensor.steps, b.sensor.steps),
        "oversampling": (a.oversample, b.oversample),
        "source count": (a.sources.count, b.sources.count),
        "phi steps and mosaic domains": (tuple(a.orientations.shape), tuple(b.orientations.shape)),
        "structure-factor table shape": (_table_shape(a), _table_shape(b)),
    }
    for name, (left, right) in checks.items():
        if left != right:
            return f"{name} ({left} != {right})"
    if (a.mask is None) != (b.mask is None) or (
        a.mask is not None and b.mask is not None and not torch.equal(a.mask, b.mask)
    ):
        return "mask"
    return None


def _table_shape(setup: Setup) -> tuple[int, ...] | None:
    table = setup.structure.table
    return None if table is None else tuple(table.shape)


class RunState(NamedTuple):
    """nanoBragg's run-wide state, carried from chunk to chunk in its pixel order."""

    interpolating: bool  # tricubic interpolation still on (it only ever turns off)
    stale_pending: bool  # the stale phi-0 first sweep still to come


def _pixel_chunks(
    row0: int,
    col0: int,
    height: int,
    width: int,
    chunk: int,
    device: torch.device,
    selected: torch.Tensor | None = None,
) -> Iterator[tuple[slice | torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(where in the flat region, slow, fast) of each chunk of pixels, in nanoBragg's pixel order.

    Without a mask, chunks of a row or more hold whole rows, so their indices are made by repetition
    rather than by integer division (which costs more than the physics for the simplest images);
    ``selected`` (flat indices of the unmasked pixels) is cut into chunks as it is.
    """
    # int32: converting int64 to float has no vector instruction before AVX-512, and these indices
    # are converted once per sub-pixel.
    if selected is not None:
        for first in range(0, selected.numel(), chunk):
            index = selected[first : first + chunk]
            yield index, (row0 + index // width).int(), (col0 + index % width).int()
        return
    columns = torch.arange(col0, col0 + width, dtype=torch.int32, device=device)
    if chunk >= width:
        rows_per_chunk = chunk // width
        for first in range(0, height, rows_per_chunk):
            last = min(first + rows_per_chunk, height)
            rows = torch.arange(row0 + first, row0 + last, dtype=torch.int32, device=device)
            # expand + copy: one plain copy each, several times cheaper than repeat_interleave. Compiled
            # kernels take contiguous inputs; reshape alone returns a stride-0 view for a single row.
            slow = rows[:, None].expand(-1, width).contiguous().view(-1)
            fast = columns[None, :].expand(rows.numel(), -1).contiguous().view(-1)
            yield slice(first * width, last * width), slow, fast
        return
    for row in range(height):
        for first in range(0, width, chunk):
            fast = columns[first : first + chunk]
            where = slice(row * width + first, row * width + first + fast.numel())
            yield where, torch.full_like(fast, row0 + row), fast


def _evaluate(
    run_chunk: ChunkFunction,
    variant: KernelVariant,
    slow: torch.Tensor,
    fast: torch.Tensor,
    inputs: KernelInputs,
    checkpointed: bool,
) -> ChunkResult:
    if not checkpointed:
        return run_chunk(variant, slow, fast, inputs)
    # Recompute each chunk during backward instead of keeping every chunk's intermediates alive.
    # The variant (which carries the run-wide state) is fixed for this chunk, so the recomputation
    # sees the state as this chunk saw it, not the run's final state.
    photons, interpolating, stale_pending = checkpoint(run_chunk, variant, slow, fast, inputs, use_reentrant=False)
    return ChunkResult(photons, interpolating.detach(), stale_pending.detach())


def _chunk_pixels(setup: Setup, per_pixel: int, fused: bool, memory_budget: int | None) -> int:
    """Pixels per chunk: as many as the memory budget allows (and, compiled, what stays in cache)."""
    budget = memory_budget if memory_budget is not None else DEFAULT_MEMORY_BUDGET
    itemsize = torch.finfo(setup.dtype).bits // 8
    per_evaluation = itemsize * (FUSED_TEMPORARIES if fused else EAGER_TEMPORARIES)
    evaluations = budget // per_evaluation
    if fused:
        evaluations = min(evaluations, FUSED_MAX_EVALUATIONS)
    return max(1, evaluations // per_pixel)


def render_variants(setup: Setup) -> list[KernelVariant]:
    """The compiled variants a render of ``setup`` uses, in order (tricubic runs may fall back to nearest)."""
    state = RunState(
        interpolating=setup.structure.interpolate and setup.structure.table is not None, stale_pending=False
    )
    variants = [kernel_variant(setup, state)]
    if state.interpolating and setup.structure.sticky:
        variants.append(kernel_variant(setup, state._replace(interpolating=False)))
    return variants


def kernel_variant(setup: Setup, state: RunState) -> KernelVariant:
    """The discrete choices of ``setup`` for a chunk that starts in run-wide ``state``."""
    cfg, bm = setup.config.detector, setup.config.beam
    if setup.structure.table is None:
        structure = "default"
    else:
        structure = "tricubic" if state.interpolating else "nearest"
    return KernelVariant(
        shape=setup.shape,
        structure=structure,
        curved=cfg.curved,
        curved_lab_axes=setup.geometry.curved_lab_axes,
        point_pixel=cfg.point_pixel,
        absorbing_sensor=setup.sensor.thickness > 0.0,
        omega_per_subpixel=setup.omega_per_subpixel,
        capture_per_subpixel=setup.capture_per_subpixel,
        polarized=not bm.nopolar,
        polar_per_subpixel=setup.polar_per_subpixel,
        dmin=setup.dmin > 0.0,
        water=bm.water_um != 0.0,
        running_product=setup.running_product,
        background_per_evaluation=setup.background_per_evaluation,
        source_weights=setup.sources.weight is not None,
        sticky=setup.structure.sticky,
        stale_start=state.stale_pending,
    )


def kernel_inputs(setup: Setup) -> KernelInputs:
    """Every tensor the kernel reads, derived once per render from ``setup``."""
    dtype, device = setup.dtype, setup.device
    geom, sensor, sources = setup.geometry, setup.sensor, setup.sources

    def scalar(value: float) -> torch.Tensor:
        return torch.tensor(float(value), dtype=dtype, device=device)

    e_in, b_in = polarization_frame(geom.polar, sources.incident)

    def by_row(orientations: torch.Tensor) -> torch.Tensor:  # (phi, domains, 3, 3) -> (3M, 3)
        M = orientations.shape[0] * orientations.shape[1]
        return orientations.reshape(M, 3, 3).transpose(0, 1).reshape(3 * M, 3).contiguous()

    first = setup.first_evaluation_orientations
    weight = sources.weight if sources.weight is not None else torch.ones_like(sources.wavelength)
    sf = setup.structure
    if sf.table is not None:
        table = sf.tensors()
    else:
        placeholder = torch.zeros(1, 1, 1, dtype=dtype, device=device)
        table = StructureTable(placeholder, torch.zeros(3, dtype=dtype), torch.zeros(3, dtype=dtype), sf.default_F)
    return KernelInputs(
        frame=detector_frame(geom),
        sub_index=torch.arange(setup.oversample, dtype=torch.int32, device=device),
        layer_depths=sensor.step * torch.arange(sensor.steps, dtype=dtype, device=device),
        attenuation_per_layer=scalar(sensor.step * sensor.mu),
        incident=sources.incident,
        wavelength=sources.wavelength,
        source_weight=weight,
        e_in=e_in,
        b_in=b_in,
        kahn=setup.kahn,
        dmin=scalar(setup.dmin),
        orientations=by_row(setup.orientations),
        first_orientations=by_row(first if first is not None else setup.orientations),
        N=setup.N,
        reciprocal=setup.lattice.reciprocal,
        fudge=scalar(setup.fudge),
        table=table,
        scale=R_E_SQUARED * setup.fluence / setup.steps,
        background=setup.background,
    )


def _parameters(setup: Setup) -> list[torch.Tensor]:
    """The tensors of ``setup`` through which parameters can reach the image."""
    geom, sources = setup.geometry, setup.sources
    return [
        geom.pix0, geom.fdet, geom.sdet, geom.odet, geom.close_distance, geom.distance,
        sources.incident, sources.wavelength, setup.orientations, setup.N, setup.kahn,
        setup.fluence, setup.background, setup.structure.default_F, setup.lattice.reciprocal,
    ] + ([setup.first_evaluation_orientations] if setup.first_evaluation_orientations is not None else [])  # fmt: skip
