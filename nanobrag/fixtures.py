"""Small, fast configurations shared by the gradient tests and the gradient probe.

They live in the package (not in tests/) so that ``nanobrag probe-gradients`` without nanoBragg
flags runs exactly the case that ``tests/nanobrag/test_gradients.py::TestAdvancedGradients`` checks.
"""

from __future__ import annotations

from .config import BeamConfig, CrystalConfig, DetectorConfig, SimulationConfig, StructureConfig

# The triclinic cell and misset of the golden case "triclinic_misset".
TRICLINIC_CELL = (70.0, 80.0, 90.0, 75.0, 85.0, 95.0)
TRICLINIC_MISSET_DEG = (10.0, 20.0, 30.0)


def triclinic_fixture(default_F: float = 100.0) -> SimulationConfig:
    """A 5x5x5-cell triclinic crystal on a 16x16 detector of 2 mm pixels, 100 mm away, at 1 A.

    ``oversample`` is fixed at 2: nanoBragg's automatic choice depends on the cell and the
    wavelength and would jump under a finite-difference step. ``default_F`` is 100 by default
    because with nanoBragg's default of 0 every pixel, and so every gradient, is exactly zero
    (initiative GRADIENT-FLOW-001).
    """
    return SimulationConfig(
        crystal=CrystalConfig(cell=TRICLINIC_CELL, misset_deg=TRICLINIC_MISSET_DEG, N=(5.0, 5.0, 5.0)),
        structure=StructureConfig(default_F=default_F),
        detector=DetectorConfig(distance_mm=100.0, fpixels=16, spixels=16, pixel_mm=2.0, oversample=2),
        beam=BeamConfig(wavelength_A=1.0),
    )
