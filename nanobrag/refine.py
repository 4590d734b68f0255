"""Fit model parameters to a measured (or simulated) image by differentiating the simulation.

The loss is the squared residual between the target image T and the model image M times an overall
scale k, relative to the target: |T - k M|^2 / |T|^2. The scale is not a free parameter of the
optimiser: for each M the best k = <M, T> / <M, M> is solved in closed form (and differentiated
through), so intensity units never need a starting guess.

Optimiser: L-BFGS with a strong-Wolfe line search. The problem has a handful of parameters and a
deterministic, smooth objective, which is where a quasi-Newton method shines: it needs no learning
rate, every accepted step lowers the loss, and a noise-free fit reaches round-off in tens of
iterations where Adam needs hundreds and a learning rate tuned to each parameter's unit. Parameters
are optimised as offsets from the start in "natural steps" (0.5 degree for angles, 1% of the
starting value otherwise) so that one step means roughly the same for each of them.

Default coarse-to-fine schedule (:data:`DEFAULT_SCHEDULE`, stage names in :data:`STAGES`): first the
crystal is modelled with GAUSS spots ("gauss": same N and spot width as SQUARE spots but no side
lobes, so the loss has a wider, smoother basin), then with its own shape ("model"). A coarse stage
only steers: its result is kept only if the real model fits better there than where the stage
began. When spots are narrower than a pixel (an undersampled image) the GAUSS stand-in can steer
wrongly; use the schedule ("model",) there.

Before fitting, nanoBragg's automatic choices that depend on the refined parameters (oversampling,
N from -xtalsize) are frozen at the starting model's values; otherwise the loss would jump whenever
one of them changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .config import CrystalShape, SimulationConfig
from .detector import resolve_pixel_grid
from .distributed import World
from .errors import InputError
from .frames import ImageSetups
from .gradients import CELL_PARAMETERS, check_parameter_names, starting_values
from .renderer import render
from .setup import PARAMETERS, Device, build_setup

REFINABLE = CELL_PARAMETERS + ("misset_x", "misset_y", "misset_z", "distance", "beam_x", "beam_y")

_ANGLE_STEP_DEG = 0.5
_RELATIVE_STEP = 0.01
_LINE_SEARCH_EVALUATIONS = 25


# Stage name -> the spot shape that stage models (None: the shape the configuration gives).
STAGES: dict[str, CrystalShape | None] = {"gauss": CrystalShape.GAUSS, "model": None}
DEFAULT_SCHEDULE = ("gauss", "model")


def check_schedule(names: Sequence[str], source: str = "schedule") -> list[str]:
    """Stage names as a list, or InputError naming ``source``; the last stage must fit the model itself."""
    unknown = [name for name in names if name not in STAGES]
    if unknown:
        raise InputError(f"{source}: unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}")
    if not names or names[-1] != "model":
        raise InputError(f"{source}: the last stage must be 'model' (the configured crystal shape)")
    return list(names)


@dataclass
class ImageTarget:
    """One image to fit, with the model that describes it.

    ``image`` is an array or tensor of the detector's shape, or a function returning one (called only
    by the process that fits this image). ``values`` are per-image parameter values (names of
    :data:`nanobrag.setup.PARAMETERS`, e.g. the misset of a still) that ``config`` does not hold;
    they start the image's own refined parameters and are held fixed otherwise.
    """

    config: SimulationConfig
    image: Any
    values: Mapping[str, float] = field(default_factory=dict)
    name: str = "target"


@dataclass
class RefinementResult:
    """Outcome of :func:`refine` / :func:`refine_images`.

    ``initial``/``final`` hold the shared parameters, plus the closed-form ``scale`` when there is one
    image; ``images`` holds each image's own parameters, scale and loss.
    """

    parameters: list[str]
    initial: dict[str, float]
    final: dict[str, float]
    final_loss: float
    # Stage after stage: the loss before the stage's first iteration, then the best loss after each.
    loss_history: list[float] = field(default_factory=list)
    iterations: int = 0
    converged: bool = False
    stages: list[dict[str, Any]] = field(default_factory=list)
    per_image: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        document = {
            "parameters": self.parameters,
            "units": {name: PARAMETERS[name][0] for name in self.parameters + self.per_image},
            "initial": self.initial,
            "final": self.final,
            "final_loss": self.final_loss,
            "loss_history": self.loss_history,
            "iterations": self.iterations,
            "converged": self.converged,
            "stages": self.stages,
        }
        if len(self.images) > 1 or self.per_image:
            document.update(per_image=self.per_image, images=self.images)
        return document


def check_refinable(names: Sequence[str], source: str = "parameters") -> list[str]:
    """``names`` as a list, or InputError naming ``source`` when one cannot be refined."""
    names = check_parameter_names(names, source)
    if not names:
        raise InputError(f"{source}: name at least one parameter to refine")
    fixed = [name for name in names if name not in REFINABLE]
    if fixed:
        raise InputError(f"{source}: cannot refine {', '.join(fixed)}; refinable: {', '.join(REFINABLE)}")
    return names


def detector_shape(config: SimulationConfig) -> tuple[int, int]:
    """(slow, fast) pixel counts of the configured detector."""
    grid = resolve_pixel_grid(config.detector)
    return grid.spixels, grid.fpixels


def freeze_auto_selections(config: SimulationConfig) -> SimulationConfig:
    """``config`` with oversampling and crystal size in cells fixed at the values nanoBragg would choose.

    Also stops an HKL file's cache (Fdump.bin) being rewritten at every model evaluation.
    """
    resolved = build_setup(config, dtype=torch.float64)
    frozen = config.model_copy(deep=True)
    frozen.detector.oversample = resolved.oversample
    n_a, n_b, n_c = resolved.N.tolist()
    frozen.crystal.N = (n_a, n_b, n_c)
    frozen.crystal.xtalsize_mm = (None, None, None)
    if frozen.structure.hkl_path is not None:
        frozen.structure.dump_path = None
    return frozen


@dataclass
class _Evaluation:
    loss: torch.Tensor  # the mean relative loss over all images
    gradient: torch.Tensor | None  # d loss / d offsets
    losses: torch.Tensor  # (images,) each image's relative loss
    scales: torch.Tensor  # (images,) each image's closed-form scale


@dataclass
class _Image:
    """An image this process fits: its global index, frozen model, target and fixed parameters."""

    index: int
    config: SimulationConfig
    target: torch.Tensor
    target_norm: torch.Tensor
    fixed: dict[str, torch.Tensor]
    _by_shape: dict[CrystalShape, SimulationConfig] = field(default_factory=dict)

    def model(self, shape: CrystalShape | None) -> SimulationConfig:
        """The image's model with the crystal modelled as ``shape`` (None: as configured)."""
        if shape is None:
            return self.config
        if shape not in self._by_shape:
            self._by_shape[shape] = self.config.model_copy(deep=True)
            self._by_shape[shape].crystal.shape = shape
        return self._by_shape[shape]


class _Objective:
    """The mean scaled-residual loss over all images, as a function of offsets from the starting values.

    The offsets are one flat vector: the shared parameters, then each image's own parameters in
    image order, in natural steps. Every process holds the whole vector and evaluates its own images;
    each image's loss, scale and gradient row go into a table that is summed across processes, where
    every row has exactly one non-zero contributor. The sums over images are then taken from that
    table in image order, so K processes compute the same numbers as one, bit for bit.
    """

    def __init__(
        self,
        images: list[_Image],
        count: int,
        shared: list[str],
        per_image: list[str],
        shared_start: dict[str, float],
        per_image_start: torch.Tensor,
        world: World,
        dtype: torch.dtype,
        device: Device,
    ) -> None:
        self.images, self.count, self.shared, self.per_image = images, count, shared, per_image
        self.world, self.dtype, self.device = world, dtype, device
        self.setups = ImageSetups()  # an -hkl table is read once, not at every evaluation
        self.shared_start = torch.tensor([shared_start[n] for n in shared], dtype=dtype, device=device)
        self.shared_steps = _natural_steps(shared, self.shared_start)
        self.per_image_start = per_image_start.to(dtype=dtype, device=device)  # (images, P)
        self.per_image_steps = _natural_steps(per_image, self.per_image_start)
        self.offsets = torch.zeros(len(shared) + count * len(per_image), dtype=dtype, device=device, requires_grad=True)

    def _parameters(self, offsets: torch.Tensor, index: int) -> dict[str, torch.Tensor]:
        S, P = len(self.shared), len(self.per_image)
        shared = self.shared_start + offsets[:S] * self.shared_steps
        own = self.per_image_start[index] + offsets[S + index * P : S + (index + 1) * P] * self.per_image_steps[index]
        return {**dict(zip(self.shared, shared.unbind())), **dict(zip(self.per_image, own.unbind()))}

    def evaluate(self, shape: CrystalShape | None, gradient: bool) -> _Evaluation:
        """Loss (and gradient) at the current offsets, modelling the crystal with ``shape`` (None: as configured)."""
        S, P = len(self.shared), len(self.per_image)
        table = torch.zeros(self.count, 2 + S + P, dtype=self.dtype, device=self.device)
        for image in self.images:
            offsets = self.offsets.detach().requires_grad_(gradient)
            with torch.set_grad_enabled(gradient):
                params = {**image.fixed, **self._parameters(offsets, image.index)}
                setup = self.setups.build(image.model(shape), params=params, dtype=self.dtype, device=self.device)
                model = render(setup)
                # A blank model (possible far from the start) gives scale 0 and loss 1, not 0/0.
                scale = (model * image.target).sum() / (model * model).sum().clamp_min(torch.finfo(self.dtype).tiny)
                loss = ((image.target - scale * model) ** 2).sum() / image.target_norm
            row = table[image.index]
            row[0], row[1] = loss.detach(), scale.detach()
            if gradient:
                (image_grad,) = torch.autograd.grad(loss / self.count, offsets, allow_unused=True)
                if image_grad is not None:
                    row[2 : 2 + S] = image_grad[:S]
                    row[2 + S :] = image_grad[S + image.index * P : S + (image.index + 1) * P]
        self.world.all_reduce_sum(table)
        losses, scales = table[:, 0], table[:, 1]
        total = losses.sum() / self.count
        total_grad = None
        if gradient:
            total_grad = torch.cat([table[:, 2 : 2 + S].sum(0), table[:, 2 + S :].reshape(-1)])
        return _Evaluation(loss=total, gradient=total_grad, losses=losses, scales=scales)

    def values(self, offsets: torch.Tensor) -> tuple[dict[str, float], list[dict[str, float]]]:
        """Shared parameter values and each image's own values at ``offsets``."""
        offsets = offsets.detach()
        S, P = len(self.shared), len(self.per_image)
        shared = (self.shared_start + offsets[:S] * self.shared_steps).tolist()
        own = (self.per_image_start + offsets[S:].view(self.count, P) * self.per_image_steps).tolist()
        return dict(zip(self.shared, shared)), [dict(zip(self.per_image, row)) for row in own]


def _natural_steps(names: list[str], start: torch.Tensor) -> torch.Tensor:
    """One natural step per value of ``start`` (..., len(names)): 0.5 degree for angles, else 1% of the value."""
    angle = torch.tensor([PARAMETERS[n][0] == "deg" for n in names], dtype=torch.bool, device=start.device)
    return torch.where(angle, torch.full_like(start, _ANGLE_STEP_DEG), _RELATIVE_STEP * start.abs().clamp_min(1.0))


def refine(
    config: SimulationConfig,
    target: torch.Tensor | np.ndarray,
    parameters: Sequence[str],
    *,
    max_iter: int = 100,
    schedule: Sequence[str] = DEFAULT_SCHEDULE,
    tolerance: float = 1e-10,
    dtype: torch.dtype = torch.float64,
    device: Device = None,
    progress: Callable[[str], None] | None = None,
) -> RefinementResult:
    """Fit ``parameters`` (names from :data:`REFINABLE`) and an overall scale so the image matches ``target``.

    ``config`` is the starting model and ``target`` an image (array or tensor) of the detector's
    shape. Each stage of ``schedule`` runs at most ``max_iter`` L-BFGS iterations and stops early
    once an iteration lowers the loss by less than ``tolerance`` times its value; ``converged`` says
    whether the last stage stopped that way. Final values are the best evaluated (lowest loss).
    ``progress`` receives one line per iteration. :func:`refine_images` fits many images at once.

    Returns:
        The :class:`RefinementResult` (initial and final values in the flags' units, losses, stages).

    Raises:
        InputError: unknown parameters or stages, a target of the wrong shape, non-finite or all zero,
            or a blank starting model.
    """
    names = check_refinable(parameters)
    return refine_images(
        [ImageTarget(config, target)],
        names,
        max_iter=max_iter,
        schedule=schedule,
        tolerance=tolerance,
        dtype=dtype,
        device=device,
        progress=progress,
    )


def refine_images(
    targets: Sequence[ImageTarget],
    shared: Sequence[str],
    per_image: Sequence[str] = (),
    *,
    max_iter: int = 100,
    schedule: Sequence[str] = DEFAULT_SCHEDULE,
    tolerance: float = 1e-10,
    dtype: torch.dtype = torch.float64,
    device: Device = None,
    progress: Callable[[str], None] | None = None,
    world: World | None = None,
) -> RefinementResult:
    """Fit ``shared`` parameters (common to all images) and each image's ``per_image`` parameters and scale.

    The loss is the mean over images of each image's relative residual (with its closed-form scale);
    shared parameters start from the first image's model, per-image ones from each image's model or
    its ``values``. Under torchrun pass the run's :class:`nanobrag.distributed.World`: each process
    then loads and renders its share of the images, the processes sum their contributions, and every
    one takes the same optimiser steps; the result equals the one-process result. Only rank 0 reports
    ``progress``. Otherwise as :func:`refine`.
    """
    world = world or World()
    shared = check_parameter_names(shared, "shared parameters")
    per_image = check_parameter_names(per_image, "per-image parameters")
    not_refinable = [name for name in shared + per_image if name not in REFINABLE]
    if not_refinable:
        raise InputError(f"cannot refine {', '.join(not_refinable)}; refinable: {', '.join(REFINABLE)}")
    if not shared and not per_image:
        raise InputError("parameters: name at least one parameter to refine")
    both = sorted(set(shared) & set(per_image))
    if both:
        raise InputError(f"{', '.join(both)}: either shared or per image, not both")
    stages = check_schedule(schedule)
    if max_iter < 1:
        raise InputError(f"max_iter: must be at least 1, got {max_iter}")
    if not targets:
        raise InputError("targets: no image to fit")
    varying = sorted({name for target in targets for name in target.values} & set(shared))
    if varying:
        raise InputError(f"{', '.join(varying)}: set per image by the targets; refine per image, or not at all")
    say = (progress or (lambda line: None)) if world.is_root else (lambda line: None)

    shared_start = starting_values(targets[0].config, shared)
    images, per_image_start = _load_images(targets, per_image, world, dtype, device)
    objective = _Objective(images, len(targets), shared, per_image, shared_start, per_image_start, world, dtype, device)

    with torch.no_grad():
        start = objective.evaluate(None, gradient=False)
    if not bool((start.scales > 0).all()):
        blank = [targets[i].name for i in range(len(targets)) if not start.scales[i] > 0]
        raise InputError(
            f"{', '.join(blank[:3])}: the starting model image is blank or anticorrelated with the target"
            " (no structure factors? give -default_F or -hkl)"
        )
    model_loss = float(start.loss)
    initial = _values(objective, targets, start)
    history: list[float] = []
    summaries: list[dict[str, Any]] = []
    for number, stage in enumerate(stages, start=1):
        stage_start = objective.offsets.detach().clone()
        stage_history, converged = _run_stage(objective, stage, STAGES[stage], max_iter, tolerance, say)
        history += stage_history
        summary = {
            "name": stage,
            "iterations": len(stage_history) - 1,
            "converged": converged,
            "loss": stage_history[-1],
        }
        if number < len(stages):
            # A coarse stage only steers: keep its result only if the real model fits better there.
            with torch.no_grad():
                stage_model_loss = float(objective.evaluate(None, gradient=False).loss)
                summary["kept"] = stage_model_loss < model_loss
                if summary["kept"]:
                    model_loss = stage_model_loss
                else:
                    objective.offsets.copy_(stage_start)
            say(f"{stage}: model loss {stage_model_loss:.6e}, {'kept' if summary['kept'] else 'discarded'}")
        summaries.append(summary)

    with torch.no_grad():
        end = objective.evaluate(None, gradient=False)
    total = sum(summary["iterations"] for summary in summaries)
    say(f"done: loss {float(end.loss):.6e} after {total} iterations, converged: {converged}")
    final = _values(objective, targets, end)
    return RefinementResult(
        parameters=shared,
        initial=initial["shared"],
        final=final["shared"],
        final_loss=float(end.loss),
        loss_history=history,
        iterations=total,
        converged=converged,
        stages=summaries,
        per_image=per_image,
        images=[
            {"target": target.name, "initial": first, "final": last, "loss": loss}
            for target, first, last, loss in zip(targets, initial["images"], final["images"], final["losses"])
        ],
    )


def _load_images(
    targets: Sequence[ImageTarget], per_image: list[str], world: World, dtype: torch.dtype, device: Device
) -> tuple[list[_Image], torch.Tensor]:
    """This process's images, checked and with frozen models, and every image's per-image starting values.

    A problem with any image is raised on every process (naming the first such image).
    """
    images: list[_Image] = []
    problem = None
    start = torch.zeros(len(targets), len(per_image), dtype=torch.float64, device=device)
    for index in world.shard(range(len(targets))):
        target = targets[index]
        try:
            image = target.image() if callable(target.image) else target.image
            tensor = _checked_target(torch.as_tensor(image, dtype=dtype, device=device), target)
            own = {name: target.values[name] for name in per_image if name in target.values}
            own.update(starting_values(target.config, [name for name in per_image if name not in own]))
        except InputError as err:
            problem = problem or str(err)
            continue
        start[index] = torch.tensor([own[name] for name in per_image], dtype=torch.float64, device=device)
        fixed = {
            name: torch.tensor(float(value), dtype=torch.float64)
            for name, value in target.values.items()
            if name not in per_image
        }
        config = freeze_auto_selections(target.config)
        images.append(_Image(index, config, tensor, (tensor * tensor).sum(), fixed))
    problems = [p for p in world.all_gather(problem) if p is not None]
    if problems:
        raise InputError(problems[0])
    return images, world.all_reduce_sum(start)


def _checked_target(target: torch.Tensor, image: ImageTarget) -> torch.Tensor:
    where = "target" if image.name == "target" else f"target {image.name}"
    if tuple(target.shape) != detector_shape(image.config):
        raise InputError(
            f"{where}: shape {tuple(target.shape)} does not match the detector's"
            f" {detector_shape(image.config)} (slow, fast)"
        )
    if not torch.isfinite(target).all():
        raise InputError(f"{where}: the target image has non-finite pixels (NaN or infinity)")
    if not (target * target).sum() > 0:
        raise InputError(f"{where}: the target image is all zero")
    return target


def _values(objective: _Objective, targets: Sequence[ImageTarget], evaluation: _Evaluation) -> dict[str, Any]:
    """Shared values (with the scale when there is one image), each image's values and scale, and losses."""
    shared, own = objective.values(objective.offsets)
    scales, losses = evaluation.scales.tolist(), evaluation.losses.tolist()
    if len(targets) == 1:
        shared["scale"] = scales[0]
    images = [{**values, "scale": scale} for values, scale in zip(own, scales)]
    return {"shared": shared, "images": images, "losses": losses}


def _run_stage(
    objective: _Objective,
    name: str,
    shape: CrystalShape | None,
    max_iter: int,
    tolerance: float,
    say: Callable[[str], None],
) -> tuple[list[float], bool]:
    """L-BFGS iterations modelling the crystal with ``shape``; leaves the offsets at the best point evaluated.

    Returns the loss before the first iteration followed by the best loss after each iteration, and
    whether the last iteration lowered it by less than ``tolerance`` times its value.
    """
    # One iteration per step() call; max_eval must then be given, or the line search gets no evaluations.
    optimiser = torch.optim.LBFGS(
        [objective.offsets],
        lr=1.0,
        max_iter=1,
        max_eval=1 + _LINE_SEARCH_EVALUATIONS,
        line_search_fn="strong_wolfe",
        tolerance_grad=0.0,
        tolerance_change=0.0,
        history_size=20,
    )
    with torch.no_grad():
        loss = objective.evaluate(shape, gradient=False).loss
    best: dict[str, Any] = {"loss": float(loss), "offsets": objective.offsets.detach().clone()}
    say(f"{name} start: loss {best['loss']:.6e}")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        evaluation = objective.evaluate(shape, gradient=True)
        objective.offsets.grad = evaluation.gradient
        if float(evaluation.loss) < best["loss"]:  # NaN never compares lower
            best.update(loss=float(evaluation.loss), offsets=objective.offsets.detach().clone())
        return evaluation.loss

    history, converged = [best["loss"]], False
    while len(history) <= max_iter and not converged:
        optimiser.step(closure)  # one L-BFGS iteration: a direction, then a line search along it
        converged = history[-1] - best["loss"] <= tolerance * history[-1]
        history.append(best["loss"])
        shared, own = objective.values(best["offsets"])
        shown = shared if len(own) > 1 or not own[0] else {**shared, **own[0]}
        say(
            f"{name} iteration {len(history) - 1}: loss {best['loss']:.6e}  "
            + "  ".join(f"{n}={v:.7g}" for n, v in shown.items())
        )
    with torch.no_grad():
        objective.offsets.copy_(best["offsets"])
    return history, converged
