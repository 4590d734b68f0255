"""Gradients of the image with respect to nanobrag's continuous parameters, and a probe that reports them.

Parameters are named as in :data:`nanobrag.setup.PARAMETERS` and valued in the units of the matching
nanoBragg flag. :func:`starting_values` reads a configuration's value of each parameter (resolving
nanoBragg's defaults the way :func:`nanobrag.setup.build_setup` does), :func:`leaf_tensors` turns
values into leaf tensors, and :func:`probe_gradients` differentiates a scalar loss of the image under
one or more settings, e.g. ``default_F`` 0 and 100: the control experiment of GRADIENT-FLOW-001,
where all-zero gradients turned out to come from an all-zero image, not from a broken graph.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from .config import SimulationConfig
from .errors import InputError
from .io.files import write_bytes_atomic
from .renderer import simulate
from .setup import PARAMETERS, build_setup

CELL_PARAMETERS = ("cell_a", "cell_b", "cell_c", "cell_alpha", "cell_beta", "cell_gamma")

# Scalar losses of the image the probe can differentiate.
LOSSES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"sum": torch.sum, "mean": torch.mean}

DEFAULT_SETTINGS: tuple[dict[str, float], ...] = ({"default_F": 0.0}, {"default_F": 100.0})


def check_parameter_names(names: Sequence[str], source: str = "parameters") -> list[str]:
    """``names`` as a list, or InputError naming ``source`` (a flag or argument) and the unknown names."""
    unknown = [name for name in names if name not in PARAMETERS]
    if unknown:
        raise InputError(f"{source}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMETERS)}")
    return list(names)


def starting_values(config: SimulationConfig, names: Sequence[str]) -> dict[str, float]:
    """The value ``config`` gives each named parameter, in the units of :data:`PARAMETERS`.

    Values nanoBragg derives when they are not given (beam centre, N from -xtalsize, fluence from
    -flux, mosaic spread) are read from the resolved setup, so that passing them back as
    parameters reproduces the configured image.
    """
    check_parameter_names(names)
    xtal, det, bm = config.crystal, config.detector, config.beam
    if xtal.misset_random and any(name.startswith("misset_") for name in names):
        raise InputError("misset: -misset random has no fixed starting angles to differentiate; give -misset x y z")
    resolved = build_setup(config, dtype=torch.float64)
    misset = xtal.misset_deg or (0.0, 0.0, 0.0)
    readers: dict[str, Callable[[], float]] = {
        "misset_x": lambda: misset[0],
        "misset_y": lambda: misset[1],
        "misset_z": lambda: misset[2],
        "N_a": lambda: float(resolved.N[0]),
        "N_b": lambda: float(resolved.N[1]),
        "N_c": lambda: float(resolved.N[2]),
        "mosaic_spread": lambda: resolved.mosaic_spread_deg,
        "default_F": lambda: config.structure.default_F,
        "distance": lambda: det.distance_mm,
        "beam_x": lambda: float(resolved.geometry.Xbeam) * 1000.0,
        "beam_y": lambda: float(resolved.geometry.Ybeam) * 1000.0,
        "detector_rotx": lambda: det.rotx_deg,
        "detector_roty": lambda: det.roty_deg,
        "detector_rotz": lambda: det.rotz_deg,
        "twotheta": lambda: det.twotheta_deg,
        "wavelength": lambda: bm.wavelength_A,
        "dispersion": lambda: bm.dispersion_pct,
        "hdivrange": lambda: bm.hdivrange_mrad or 0.0,
        "vdivrange": lambda: bm.vdivrange_mrad or 0.0,
        "fluence": lambda: float(resolved.fluence),
        "polarization": lambda: bm.polarization,
    }
    for index, name in enumerate(CELL_PARAMETERS):
        readers[name] = functools.partial(_configured_cell_value, config, index)
    return {name: float(readers[name]()) for name in names}


def _configured_cell_value(config: SimulationConfig, index: int) -> float:
    """One -cell value (A or degrees), as CrystalConfig completes the cell (b, c copy a; angles default to 90)."""
    if config.crystal.cell is None:
        raise InputError("cell parameters: the crystal is given as a MOSFLM matrix (-mat), not as a -cell")
    return config.crystal.cell[index]


def leaf_tensors(
    values: Mapping[str, float], dtype: torch.dtype, device: torch.device | str | None = None
) -> dict[str, torch.Tensor]:
    """One scalar leaf tensor (requires_grad) per parameter value."""
    return {name: torch.tensor(float(v), dtype=dtype, device=device, requires_grad=True) for name, v in values.items()}


def probe_gradients(
    config: SimulationConfig,
    parameters: Sequence[str] = CELL_PARAMETERS,
    settings: Sequence[Mapping[str, float]] = DEFAULT_SETTINGS,
    loss: str = "sum",
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """A scalar loss of the image and its gradient with respect to each of ``parameters``, once per setting.

    Convention: parameters are named and valued as in :data:`nanobrag.setup.PARAMETERS` (the units
    of the matching nanoBragg flag); each is a leaf tensor at its configured value (or the
    setting's). The control experiment of GRADIENT-FLOW-001 is the default: ``default_F`` 0 (an
    all-zero image, so all-zero gradients) and 100.

    Args:
        config: the model.
        parameters: names to differentiate with respect to.
        settings: per run, parameter values that replace the configuration's (``{"default_F": 0}``).
        loss: "sum" or "mean" of the image.
        dtype: the computation's dtype.
        device: the computation's device (None: CPU).

    Returns:
        A JSON-ready dictionary (layout in docs/gradients.md): per setting the loss, the image maximum,
        the values and the gradients; a gradient is None when the image does not depend on that
        parameter at all in this configuration.

    Raises:
        InputError: an unknown parameter or loss, no parameter, or cell parameters of a MOSFLM-matrix crystal.

    Example:
        >>> from nanobrag.fixtures import triclinic_fixture
        >>> report = probe_gradients(triclinic_fixture(), ["cell_a"], [{"default_F": 0.0}])
        >>> report["results"][0]["gradients"]
        {'cell_a': 0.0}
    """
    parameters = check_parameter_names(parameters, "parameters")
    if not parameters:
        raise InputError("parameters: name at least one parameter to differentiate")
    if loss not in LOSSES:
        raise InputError(f"loss: unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    for setting in settings:
        check_parameter_names(list(setting), "settings")
    base_values = starting_values(config, parameters)
    results = []
    for setting in settings:
        values = {**base_values, **{name: float(v) for name, v in setting.items() if name in parameters}}
        leaves = leaf_tensors(values, dtype, device)
        fixed = {
            name: torch.tensor(float(v), dtype=dtype, device=device)
            for name, v in setting.items()
            if name not in leaves
        }
        image = simulate(config, params={**fixed, **leaves}, dtype=dtype, device=device)
        value = LOSSES[loss](image)
        grads: Sequence[torch.Tensor | None] = (None,) * len(leaves)  # no probed parameter reaches the image
        if value.requires_grad:
            grads = torch.autograd.grad(value, list(leaves.values()), allow_unused=True)
        results.append(
            {
                "setting": {name: float(v) for name, v in setting.items()},
                "loss": float(value.detach()),
                "image_max": float(image.detach().max()),
                "values": values,
                "gradients": {name: None if g is None else float(g) for name, g in zip(leaves, grads)},
            }
        )
    return {
        "loss": loss,
        "dtype": str(dtype).removeprefix("torch."),
        "device": str(device or "cpu"),
        "parameters": parameters,
        "units": {name: PARAMETERS[name][0] for name in parameters},
        "results": results,
        "config": config.model_dump(mode="json"),
    }


def json_text(document: Any) -> str:
    """Strict JSON (no NaN/Infinity tokens): non-finite numbers become the strings "nan", "inf", "-inf"."""

    def strict(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, Mapping):
            return {key: strict(v) for key, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [strict(v) for v in value]
        return value

    return json.dumps(strict(document), indent=2, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike[str], document: Any) -> None:
    """Write ``document`` as strict JSON all at once (temporary file, then os.replace)."""
    write_bytes_atomic(path, json_text(document).encode("utf-8"))
