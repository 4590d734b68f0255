"""nanobrag: a differentiable PyTorch re-implementation of James Holton's nanoBragg."""

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
from .setup import PARAMETERS, Setup, build_setup
from .simulate import render, simulate

__version__ = "0.1.0"

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
    "render",
    "simulate",
]
