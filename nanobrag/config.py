"""Typed simulation settings.

Every field is in the unit a nanoBragg user types on the command line (Angstrom, mm, degrees,
mrad, micrometres, percent); conversion to SI happens once, in :mod:`nanobrag.setup`.
``None`` means "let nanobrag choose the way nanoBragg does" (auto-selection happens in setup).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

Vec3 = tuple[float, float, float]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CrystalShape(str, Enum):
    SQUARE = "square"  # parallelepiped, sincg lattice transform
    ROUND = "round"  # ellipsoid, sinc3
    GAUSS = "gauss"  # Gaussian spots
    TOPHAT = "tophat"  # flat-top spots clipped at the FWHM


class Convention(str, Enum):
    MOSFLM = "mosflm"
    XDS = "xds"
    DENZO = "denzo"
    ADXV = "adxv"
    DIALS = "dials"
    CUSTOM = "custom"


class Pivot(str, Enum):
    BEAM = "beam"
    SAMPLE = "sample"


class CrystalConfig(_Model):
    """Unit cell, orientation, size, shape, mosaicity and spindle rotation."""

    cell: tuple[float, float, float, float, float, float] | None = Field(
        None, description="a b c (A) alpha beta gamma (deg); missing b, c default to a, angles to 90"
    )
    mosflm_matrix: tuple[Vec3, Vec3, Vec3] | None = Field(
        None,
        description="rows of a MOSFLM A matrix as in the file: (a*x b*x c*x), (a*y ...), (a*z ...), wavelength-scaled",
    )
    misset_deg: Vec3 | None = Field(None, description="rotations about x, y, z applied in that order")
    misset_random: bool = False
    misset_seed: int | None = Field(None, description="seed for -misset random (nanoBragg default: time)")
    N: Vec3 = Field((1.0, 1.0, 1.0), description="unit cells along a, b, c")
    xtalsize_mm: tuple[float | None, float | None, float | None] = Field(
        (None, None, None), description="crystal size along a, b, c in mm; overrides N where given"
    )
    shape: CrystalShape = CrystalShape.SQUARE
    fudge: float = 1.0
    mosaic_spread_deg: float | None = None
    mosaic_domains: int | None = None
    mosaic_seed: int = 12345678
    phi0_deg: float = 0.0
    osc_deg: float | None = None
    phistep_deg: float | None = None
    phisteps: int | None = None
    spindle_axis: Vec3 | None = None


class StructureConfig(_Model):
    """Where structure factors come from."""

    hkl_path: Path | None = None
    default_F: float = 0.0
    interpolate: bool | None = Field(None, description="None: tricubic when any N <= 2 (nanoBragg's rule)")
    dump_path: Path | None = Field(
        None, description="binary cache of the parsed table: written after reading -hkl, read when no -hkl is given"
    )


class DetectorConfig(_Model):
    """Detector size, placement, orientation and sensor."""

    fpixels: int | None = None
    spixels: int | None = None
    pixel_mm: float = 0.1
    detsize_f_mm: float = 102.4
    detsize_s_mm: float = 102.4
    distance_mm: float = 100.0
    close_distance_mm: float | None = None
    convention: Convention = Convention.MOSFLM
    pivot: Pivot | None = Field(None, description="None: the convention's own pivot")
    Xbeam_mm: float | None = None
    Ybeam_mm: float | None = None
    Xclose_mm: float | None = None
    Yclose_mm: float | None = None
    ORGX: float | None = None
    ORGY: float | None = None
    rotx_deg: float = 0.0
    roty_deg: float = 0.0
    rotz_deg: float = 0.0
    twotheta_deg: float = 0.0
    fdet_vector: Vec3 | None = None
    sdet_vector: Vec3 | None = None
    odet_vector: Vec3 | None = None
    beam_vector: Vec3 | None = None
    polar_vector: Vec3 | None = None
    twotheta_axis: Vec3 | None = None
    pix0_vector_m: Vec3 | None = Field(None, description="-pix0_vector, metres, as nanoBragg takes it")
    curved: bool = False
    point_pixel: bool = False
    absorption_depth_um: float | None = Field(None, description="sensor attenuation depth; 0 or inf: none")
    thick_um: float = 0.0
    thicksteps: int | None = None
    roi: tuple[int, int, int, int] | None = Field(None, description="xmin xmax ymin ymax, inclusive")
    oversample: int | None = None
    oversample_thick: bool = False
    oversample_polar: bool = False
    oversample_omega: bool = False
    mask_path: Path | None = Field(
        None, description="SMV mask (-mask): pixels whose value is 0 are not simulated and stay 0"
    )

    @field_validator("pixel_mm")
    @classmethod
    def _positive_pixel(cls, v: float) -> float:
        if not v > 0:  # NaN too
            raise ValueError("pixel size must be positive")
        return v


class BeamConfig(_Model):
    """Wavelength, sources, polarization, fluence and background."""

    wavelength_A: float = 1.0
    dispersion_pct: float = 0.0
    dispstep_pct: float | None = None
    dispsteps: int | None = None
    hdivrange_mrad: float | None = None
    vdivrange_mrad: float | None = None
    hdivstep_mrad: float | None = None
    vdivstep_mrad: float | None = None
    hdivsteps: int | None = None
    vdivsteps: int | None = None
    round_div: bool = True
    sourcefile: Path | None = None
    fluence: float = 125932015286227086360700780544.0
    flux: float = 0.0
    exposure_s: float = 1.0
    beamsize_mm: float = 0.1
    polarization: float = 0.0
    nopolar: bool = False
    dmin_A: float = 0.0
    water_um: float = 0.0

    @field_validator("wavelength_A")
    @classmethod
    def _positive_wavelength(cls, v: float) -> float:
        if not v > 0:  # NaN too
            raise ValueError("wavelength must be positive")
        return v


class SimulationConfig(_Model):
    """Everything the physics needs; outputs live in :class:`OutputConfig`."""

    crystal: CrystalConfig = CrystalConfig()
    structure: StructureConfig = StructureConfig()
    detector: DetectorConfig = DetectorConfig()
    beam: BeamConfig = BeamConfig()
    corrected: bool = Field(
        False,
        description="corrected physics for every nanoBragg quirk (nanobrag.compat); False renders nanoBragg's image",
    )


class OutputConfig(_Model):
    """Files to write and how to scale them."""

    floatfile: Path | None = None
    intfile: Path | None = None
    pgmfile: Path | None = None
    noisefile: Path | None = None
    pngfile: Path | None = None
    cbffile: Path | None = None
    intfile_scale: float = 0.0
    pgm_scale: float = 0.0
    adc_offset: float = 40.0
    seed: int | None = None
