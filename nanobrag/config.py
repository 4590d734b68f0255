"""Typed simulation settings.

Every field is in the unit a nanoBragg user types on the command line (Angstrom, mm, degrees,
mrad, micrometres, percent); conversion to SI happens once, in :mod:`nanobrag.setup`.
``None`` means "let nanobrag choose the way nanoBragg does" (auto-selection happens in setup).

Every value is checked here, where it enters: numbers must be finite (``-detector_abs inf`` is the one
deliberate infinity), and values that describe nothing physical are refused -- negative lengths,
ranges and counts, a wavelength of zero, cell angles that close no cell, a singular orientation matrix.
Zero keeps its nanoBragg meaning where it has one ("choose automatically", "one isolated unit cell").
"""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.types import AllowInfNan
from pydantic_core import ErrorDetails

Vec3 = tuple[float, float, float]
Cell = tuple[float, float, float, float, float, float]  # a b c (A), alpha beta gamma (deg)

# Outside these bounds a unit cell is a typo, not a crystal: from sub-atomic to a millimetre.
CELL_EDGE_RANGE_A = (0.1, 1e7)
# V / (a b c) of a cell whose edges are (nearly) coplanar; 1 for a rectangular cell.
MIN_CELL_SINE_VOLUME = 1e-6


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


# What zero means, for the settings where nanoBragg gives it a meaning.
_ZERO_MEANS = {
    "N": "0 means a single unit cell, nanoBragg's isolated-molecule idiom",
    "xtalsize_mm": "0 means not given",
    "oversample": "0 chooses automatically",
    "mosaic_domains": "0 chooses automatically",
    "phisteps": "0 chooses automatically",
    "thicksteps": "0 chooses automatically",
    "dispsteps": "0 chooses automatically",
    "hdivsteps": "0 chooses automatically",
    "vdivsteps": "0 chooses automatically",
    "intfile_scale": "0 chooses automatically",
    "pgm_scale": "0 chooses automatically",
}


# A checked setting: a number or a tuple of numbers, any of them unset.
_Setting = float | tuple[float | None, ...] | None


def _not_negative(value: _Setting, info: ValidationInfo) -> _Setting:
    """Lengths, ranges, steps and counts: 0 keeps nanoBragg's meaning (off, or automatic); < 0 is refused."""
    parts = value if isinstance(value, tuple) else (value,)
    if any(part is not None and part < 0 for part in parts):
        meaning = _ZERO_MEANS.get(info.field_name or "")
        raise ValueError(f"must not be negative, got {_shown(value)}" + (f" ({meaning})" if meaning else ""))
    return value


def _shown(value: object) -> str:
    parts = value if isinstance(value, tuple) else (value,)
    return " ".join("unset" if part is None else f"{part:g}" for part in parts)


def problem_message(problem: ErrorDetails) -> str:
    """One validation problem as the user reads it: our own messages as they are, pydantic's with the value.

    ``Field(gt=0)`` is the one home of "must be positive"; its message is worded like the others here.
    """
    if problem["type"] == "greater_than" and problem.get("ctx", {}).get("gt") == 0:
        return f"must be positive, got {_shown(problem['input'])}"
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] != "value_error":  # pydantic's own messages do not show the value; ours do
        message = f"{message}, got {problem['input']}"
    return message


def resolved_cell(cell: Cell) -> Cell:
    """nanoBragg's defaults for an incomplete cell: b and c copy a, angles are right angles.

    Example:
        >>> resolved_cell((50.0, 0.0, 0.0, 0.0, 0.0, 120.0))
        (50.0, 50.0, 50.0, 90.0, 90.0, 120.0)
    """
    a, b, c, alpha, beta, gamma = cell
    b, c = (edge if edge > 0 else a for edge in (b, c))
    alpha, beta, gamma = (angle if angle > 0 else 90.0 for angle in (alpha, beta, gamma))
    return a, b, c, alpha, beta, gamma


def cell_sine_volume(alpha_deg: float, beta_deg: float, gamma_deg: float) -> float:
    """V / (a b c) of a cell with these angles; 0 (or NaN) when the angles close no cell."""
    ca, cb, cg = (math.cos(math.radians(x)) for x in (alpha_deg, beta_deg, gamma_deg))
    return math.sqrt(max(1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg, 0.0))


def check_cell_edges(edges: tuple[float, float, float], origin: str = "") -> None:
    """Refuse cell edges (Angstrom) outside :data:`CELL_EDGE_RANGE_A`; ``origin`` says where they came from."""
    low, high = CELL_EDGE_RANGE_A
    if not all(low <= edge <= high for edge in edges):
        raise ValueError(
            f"{origin}cell edges {' '.join(f'{e:g}' for e in edges)} A: a cell edge must lie between"
            f" {low:g} A and {high:g} A"
        )


def mosflm_real_cell(
    matrix: tuple[Vec3, Vec3, Vec3] | np.ndarray, wavelength_A: float
) -> tuple[tuple[float, float, float], float]:
    """Edges (Angstrom) and V/(abc) of the real cell of a MOSFLM A matrix (rows as in the file).

    The columns are the reciprocal vectors times the wavelength. They are normalised before the
    inversion, so a matrix of absurd magnitude (1e300) is judged by its shape, not by overflow.
    """
    reciprocal = np.asarray(matrix, dtype=np.float64).T  # rows a*, b*, c* (times lambda)
    largest = np.abs(reciprocal).max(axis=1)
    if not (largest > 0).all():
        return (0.0, 0.0, 0.0), 0.0
    lengths = largest * np.linalg.norm(reciprocal / largest[:, None], axis=1)  # no overflow at 1e300
    if not (lengths > 0).all():
        return (0.0, 0.0, 0.0), 0.0
    try:
        real = np.linalg.inv((reciprocal / lengths[:, None]).T)  # rows a, b, c for unit reciprocal rows
    except np.linalg.LinAlgError:
        return (0.0, 0.0, 0.0), 0.0
    real_lengths = np.linalg.norm(real, axis=1)
    sine_volume = abs(float(np.linalg.det(real))) / float(np.prod(real_lengths))
    if not math.isfinite(sine_volume):
        return (0.0, 0.0, 0.0), 0.0
    with np.errstate(over="ignore", divide="ignore"):
        edges = real_lengths / lengths * wavelength_A
    return (float(edges[0]), float(edges[1]), float(edges[2])), sine_volume


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

    cell: Cell | None = Field(
        None,
        description="a b c (A) alpha beta gamma (deg); b, c not positive default to a, angles to 90 (stored resolved)",
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
    fudge: float = Field(1.0, gt=0)
    mosaic_spread_deg: float | None = None
    mosaic_domains: int | None = None
    mosaic_seed: int = 12345678
    phi0_deg: float = 0.0
    osc_deg: float | None = None
    phistep_deg: float | None = None
    phisteps: int | None = None
    spindle_axis: Vec3 | None = None

    @field_validator("cell")
    @classmethod
    def _real_cell(cls, cell: Cell | None) -> Cell | None:
        """The cell with nanoBragg's defaults filled in (the one home of that rule), if it closes."""
        if cell is None:
            return cell
        if not cell[0] > 0:
            raise ValueError(f"cell edge a must be positive, got {cell[0]:g}")
        a, b, c, alpha, beta, gamma = resolved = resolved_cell(cell)
        check_cell_edges((a, b, c))
        if max(alpha, beta, gamma) >= 180.0 or cell_sine_volume(alpha, beta, gamma) < MIN_CELL_SINE_VOLUME:
            raise ValueError(
                f"angles {alpha:g} {beta:g} {gamma:g} make no cell: each angle must be less than 180 degrees"
                " and less than the sum of the other two, and the three together less than 360"
            )
        return resolved

    @field_validator("mosflm_matrix")
    @classmethod
    def _regular_matrix(cls, matrix: tuple[Vec3, Vec3, Vec3] | None) -> tuple[Vec3, Vec3, Vec3] | None:
        if matrix is not None and mosflm_real_cell(matrix, 1.0)[1] < MIN_CELL_SINE_VOLUME:
            raise ValueError(
                "the orientation matrix is singular (a zero or coplanar reciprocal vector): it describes no cell"
            )
        return matrix

    _counts_and_ranges = field_validator(
        "N", "xtalsize_mm", "mosaic_spread_deg", "mosaic_domains", "osc_deg", "phistep_deg", "phisteps"
    )(_not_negative)


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

    fpixels: int | None = Field(None, gt=0)
    spixels: int | None = Field(None, gt=0)
    pixel_mm: float = Field(0.1, gt=0)
    detsize_f_mm: float = Field(102.4, gt=0)
    detsize_s_mm: float = Field(102.4, gt=0)
    # nanoBragg drops the sign (|distance|); a detector behind the sample is placed with -twotheta.
    distance_mm: float = Field(100.0, gt=0)
    close_distance_mm: float | None = Field(None, gt=0)
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
    absorption_depth_um: Annotated[float, AllowInfNan(True)] | None = Field(
        None, description="sensor attenuation depth; 0 or inf: none"
    )
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

    @field_validator("absorption_depth_um")
    @classmethod
    def _attenuation_depth(cls, v: float | None) -> float | None:
        if v is not None and not v >= 0:
            raise ValueError(f"attenuation depth must be positive, 0 or inf, got {v:g}")
        return v

    @field_validator("beam_vector", "fdet_vector", "sdet_vector")
    @classmethod
    def _direction(cls, v: Vec3 | None) -> Vec3 | None:
        if v is not None and not any(v):
            raise ValueError("a direction cannot be the zero vector")
        return v

    _counts_and_ranges = field_validator("thick_um", "thicksteps", "oversample")(_not_negative)


class BeamConfig(_Model):
    """Wavelength, sources, polarization, fluence and background."""

    wavelength_A: float = Field(1.0, gt=0)
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
    exposure_s: float = 1.0
    beamsize_mm: float = 0.1
    flux: float = 0.0  # after exposure and beam size: its validator sees them
    polarization: float = 0.0
    nopolar: bool = False
    dmin_A: float = 0.0
    water_um: float = 0.0

    @field_validator("dispersion_pct")
    @classmethod
    def _spectrum(cls, v: float) -> float:
        # The wavelengths span lambda * (1 -+ dispersion/2): from 200 % on, some are zero or negative.
        if not 0.0 <= v < 200.0:
            raise ValueError(f"spectral dispersion must be at least 0 and less than 200 %, got {v:g}")
        return v

    @field_validator("polarization")
    @classmethod
    def _kahn_factor(cls, v: float) -> float:
        if not -1.0 <= v <= 1.0:
            raise ValueError(f"the Kahn polarization factor lies between -1 and 1, got {v:g}")
        return v

    @field_validator("flux")
    @classmethod
    def _finite_fluence(cls, v: float, info: ValidationInfo) -> float:
        exposure, beamsize_mm = info.data.get("exposure_s", 1.0), info.data.get("beamsize_mm", 0.1)
        beamsize_m = beamsize_mm / 1000.0
        fluence = v * exposure / beamsize_m / beamsize_m if beamsize_m > 0 else math.inf  # as beam.resolve_fluence
        if v != 0.0 and exposure > 0.0 and not math.isfinite(fluence):
            raise ValueError(
                f"flux x exposure / beam size^2 gives no finite fluence (flux {v:g} photons/s,"
                f" exposure {exposure:g} s, beam size {beamsize_mm:g} mm)"
            )
        return v

    _counts_and_ranges = field_validator(
        "dispstep_pct",
        "dispsteps",
        "hdivrange_mrad",
        "vdivrange_mrad",
        "hdivstep_mrad",
        "vdivstep_mrad",
        "hdivsteps",
        "vdivsteps",
        "fluence",
        "flux",
        "exposure_s",
        "beamsize_mm",
        "dmin_A",
        "water_um",
    )(_not_negative)


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

    _scales = field_validator("intfile_scale", "pgm_scale")(_not_negative)  # 0: automatic
