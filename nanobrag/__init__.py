"""nanobrag: a differentiable PyTorch re-implementation of James Holton's nanoBragg.

Names are imported on first use (PEP 562), so that ``import nanobrag`` and the command line's help
do not pay for torch until a simulation needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "BeamConfig": "config",
    "Convention": "config",
    "CrystalConfig": "config",
    "CrystalShape": "config",
    "DetectorConfig": "config",
    "OutputConfig": "config",
    "Pivot": "config",
    "SimulationConfig": "config",
    "StructureConfig": "config",
    "InputError": "errors",
    "PARAMETERS": "setup",
    "Setup": "setup",
    "build_setup": "setup",
    "build_setups": "setup",
    "render": "renderer",
    "render_batch": "renderer",
    "simulate": "renderer",
}

__all__ = [
    "PARAMETERS",
    "BeamConfig",
    "Convention",
    "CrystalConfig",
    "CrystalShape",
    "DetectorConfig",
    "InputError",
    "OutputConfig",
    "Pivot",
    "Setup",
    "SimulationConfig",
    "StructureConfig",
    "build_setup",
    "build_setups",
    "render",
    "render_batch",
    "simulate",
]

if TYPE_CHECKING:
    from .config import (
        BeamConfig,
        Convention,
        CrystalConfig,
        CrystalShape,
        DetectorConfig,
        OutputConfig,
        Pivot,
        SimulationConfig,
        StructureConfig,
    )
    from .errors import InputError
    from .renderer import render, render_batch, simulate
    from .setup import PARAMETERS, Setup, build_setup, build_setups


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
