"""nanoBragg's command line, parsed into nanobrag's configuration.

The parser is a table (:data:`FLAGS`): each entry names a flag and its aliases, says how many
arguments follow it, and applies them to a draft configuration. Flags are applied left to right,
so the last occurrence of a setting wins, exactly as in nanoBragg's single pass over ``argv``.
Unlike nanoBragg, which matches flags by substring, names must match exactly; every alias is
listed. Flags nanoBragg parses but whose physics nanobrag does not implement are refused with a
"not supported" error instead of being silently dropped.

Side effects reproduced from nanoBragg:

- pivot: ``-distance``/``-Xbeam``/``-Ybeam`` choose BEAM; ``-close_distance``/``-Xclose``/
  ``-Yclose``/``-ORGX``/``-ORGY``/``-twotheta`` choose SAMPLE; each convention flag chooses its own;
  ``-pivot`` chooses explicitly. The last one is recorded in ``detector.pivot`` (setup then forces the
  convention's pivot for every convention but CUSTOM, as nanoBragg does).
- any of the ``*_vector`` flags, ``-spindle_axis`` and ``-twotheta_axis`` switch to the CUSTOM
  convention.
- ``-detector_abs inf`` (or 0) disables absorption and also zeroes the sensor thickness.
- outputs default to nanoBragg's files: floatimage.bin, intimage.img, image.pgm (unless -nopgm) and
  noiseimage.img (unless -nonoise).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .config import Convention, CrystalShape, OutputConfig, Pivot, SimulationConfig
from .errors import InputError
from .io.matrix import read_mosflm_matrix

__all__ = ["FLAGS", "Flag", "RunOptions", "flag_help", "parse_flags"]

# nanoBragg converts energy (eV) to wavelength (Angstrom) with this constant.
_HC_EV_ANGSTROM = 12398.42
_C_INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class RunOptions:
    """How to run, as opposed to what to simulate (nanobrag's own flags)."""

    dtype: str = "float64"
    device: str = "cpu"
    compile: bool = False
    quiet: bool = False


# ---------------------------------------------------------------------------------------------
# Values


def _number(flag: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value):  # "nan" parses as a float but is no value of any setting; "inf" is (-detector_abs)
        raise InputError(f"{flag}: expected a number, got {text!r}")
    return value


def _integer(flag: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{flag}: expected an integer, got {text!r}") from None
    if abs(value) > _C_INT_MAX:
        raise InputError(f"{flag}: {value} is out of range")
    return value


def _readable_file(flag: str, text: str) -> Path:
    path = Path(text)
    try:
        with path.open("rb"):
            pass
    except OSError as err:
        raise InputError(f"{flag}: cannot read {text}: {err.strerror}") from None
    return path


def _choice(flag: str, text: str, options: Sequence[str]) -> str:
    if text not in options:
        raise InputError(f"{flag}: expected one of {', '.join(options)}, got {text!r}")
    return text


# ---------------------------------------------------------------------------------------------
# The draft configuration the flags write into


class _Draft:
    """Plain nested dicts for the config sections, plus which flag set each field (for messages)."""

    def __init__(self) -> None:
        self.sections: dict[str, dict[str, Any]] = {
            name: {} for name in ("crystal", "structure", "detector", "beam", "output", "run")
        }
        self.set_by: dict[tuple[str, str], str] = {}
        self.cell_parts: list[float] | None = None  # nanoBragg's a, b, c, alpha, beta, gamma as typed
        self.write_pgm = True
        self.write_noise = True

    def set(self, key: str, value: Any, flag: str) -> None:
        section, field = key.split(".")
        self.sections[section][field] = value
        self.set_by[(section, field)] = flag

    def get(self, key: str, default: Any) -> Any:
        section, field = key.split(".")
        return self.sections[section].get(field, default)

    def set_component(self, key: str, index: int, value: Any, default: tuple, flag: str) -> None:
        parts = list(self.get(key, default))
        parts[index] = value
        self.set(key, tuple(parts), flag)


Apply = Callable[[_Draft, str, list[str]], None]


@dataclass(frozen=True)
class Flag:
    """One nanoBragg flag: its names (canonical first), arguments, effect and help text."""

    names: tuple[str, ...]
    metavar: str
    help: str
    apply: Apply
    count: int | Callable[[Sequence[str]], int] = 1  # arguments taken, or a function of what follows


def _value(key: str, convert: Callable[[str, str], Any]) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        draft.set(key, convert(flag, args[0]), flag)

    return apply


def _number_to(*keys: str, pivot: Pivot | None = None) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        value = _number(flag, args[0])
        for key in keys:
            draft.set(key, value, flag)
        if pivot is not None:
            draft.set("detector.pivot", pivot, flag)

    return apply


def _integer_to(*keys: str) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        value = _integer(flag, args[0])
        for key in keys:
            draft.set(key, value, flag)

    return apply


def _constant(key: str, value: Any) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        draft.set(key, value, flag)

    return apply


def _nothing(draft: _Draft, flag: str, args: list[str]) -> None:
    """Accepted for compatibility; has no effect (display options, or ignored by nanoBragg too)."""


def _checked_numbers(convert: Callable[[str, str], Any]) -> Apply:
    """Validate the arguments of a flag that is otherwise ignored."""

    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        for arg in args:
            convert(flag, arg)

    return apply


def _crystal_size(*axes: int) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        size = _number(flag, args[0])
        for axis in axes:
            draft.set_component("crystal.xtalsize_mm", axis, size, (None, None, None), flag)

    return apply


def _cells(*axes: int) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        count = float(_integer(flag, args[0]))
        for axis in axes:
            draft.set_component("crystal.N", axis, count, (1.0, 1.0, 1.0), flag)

    return apply


def _custom_vector(key: str) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        draft.set(key, tuple(_number(flag, arg) for arg in args), flag)
        draft.set("detector.convention", Convention.CUSTOM, flag)

    return apply


def _convention(convention: Convention, pivot: Pivot) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        draft.set("detector.convention", convention, flag)
        draft.set("detector.pivot", pivot, flag)

    return apply


def _output_file(key: str, enable: str | None = None) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        draft.set(key, Path(args[0]), flag)
        if enable:
            setattr(draft, enable, True)

    return apply


def _enable(attribute: str, on: bool) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        setattr(draft, attribute, on)

    return apply


def _not_supported(what: str) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        raise InputError(f"{flag}: {what} is not supported by nanobrag")

    return apply


def _cell_count(following: Sequence[str]) -> int:
    """nanoBragg's -cell takes up to six numbers, stopping at the next argument that starts with '-'."""
    count = 0
    while count < min(6, len(following)) and not following[count].startswith("-"):
        count += 1
    return count


def _apply_cell(draft: _Draft, flag: str, args: list[str]) -> None:
    if not args:
        raise InputError(f"{flag}: expected 1 to 6 numbers (a [b c [alpha beta gamma]])")
    parts = draft.cell_parts or [0.0] * 6
    for index, arg in enumerate(args):  # like nanoBragg, later -cell flags overwrite only what they give
        parts[index] = _number(flag, arg)
    draft.cell_parts = parts
    draft.set_by[("crystal", "cell")] = flag


def _misset_count(following: Sequence[str]) -> int:
    return 1 if following[:1] == ["random"] else 3


def _apply_misset(draft: _Draft, flag: str, args: list[str]) -> None:
    if args == ["random"]:
        draft.set("crystal.misset_random", True, flag)
        draft.set("crystal.misset_deg", None, flag)
    else:
        draft.set("crystal.misset_deg", tuple(_number(flag, arg) for arg in args), flag)
        draft.set("crystal.misset_random", False, flag)


def _apply_mat(draft: _Draft, flag: str, args: list[str]) -> None:
    try:
        draft.set("crystal.mosflm_matrix", read_mosflm_matrix(args[0]), flag)
    except InputError as err:
        raise InputError(f"{flag}: {err}") from None


def _apply_energy(draft: _Draft, flag: str, args: list[str]) -> None:
    energy = _number(flag, args[0])
    if not energy > 0:
        raise InputError(f"{flag}: photon energy must be positive, got {args[0]}")
    draft.set("beam.wavelength_A", _HC_EV_ANGSTROM / energy, flag)


def _apply_detector_abs(draft: _Draft, flag: str, args: list[str]) -> None:
    depth = _number(flag, args[0])
    if depth < 0:
        raise InputError(f"{flag}: attenuation depth must be positive, 0 or inf, got {args[0]}")
    if depth == 0.0 or math.isinf(depth):
        # nanoBragg: "inf" or 0 turns absorption off, and zeroes the sensor thickness as well.
        draft.set("detector.absorption_depth_um", math.inf, flag)
        draft.set("detector.thick_um", 0.0, flag)
    else:
        draft.set("detector.absorption_depth_um", depth, flag)


def _apply_detpixels(*keys: str) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        count = _integer(flag, args[0])
        if count < 0:
            raise InputError(f"{flag}: pixel count must not be negative, got {count}")
        for key in keys:  # 0 means "not given" in nanoBragg: the size then comes from -detsize
            draft.set(key, count or None, flag)

    return apply


def _apply_polar(draft: _Draft, flag: str, args: list[str]) -> None:
    draft.set("beam.polarization", _number(flag, args[0]), flag)
    draft.set("beam.nopolar", False, flag)  # as in nanoBragg, -polar re-enables the correction


def _apply_pgmscale(draft: _Draft, flag: str, args: list[str]) -> None:
    draft.set("output.pgm_scale", _number(flag, args[0]), flag)
    draft.write_pgm = True


def _apply_roi(draft: _Draft, flag: str, args: list[str]) -> None:
    draft.set("detector.roi", tuple(_integer(flag, arg) for arg in args), flag)


def _run_choice(key: str, options: Sequence[str]) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str]) -> None:
        draft.set(key, _choice(flag, args[0], options), flag)

    return apply


def _apply_pivot(draft: _Draft, flag: str, args: list[str]) -> None:
    draft.set("detector.pivot", Pivot(_choice(flag, args[0], [p.value for p in Pivot])), flag)


# ---------------------------------------------------------------------------------------------
# The table


def _flag(
    names: str, metavar: str, help: str, apply: Apply, count: int | Callable[[Sequence[str]], int] | None = None
) -> Flag:
    if count is None:
        count = len(metavar.split())
    return Flag(tuple(names.split()), metavar, help, apply, count)


FLAGS: tuple[Flag, ...] = (
    # crystal
    _flag(
        "-cell", "a [b c [al be ga]]", "unit cell (A, deg); b, c default to a, angles to 90", _apply_cell, _cell_count
    ),
    _flag("-mat", "FILE", "MOSFLM A matrix (orientation and cell)", _apply_mat),
    _flag(
        "-misset",
        "X Y Z|random",
        "crystal rotations about x, y, z (deg), or a random orientation",
        _apply_misset,
        _misset_count,
    ),
    _flag("-misset_seed", "N", "seed for -misset random (default: time)", _integer_to("crystal.misset_seed")),
    _flag("-N", "N", "unit cells along a, b and c", _cells(0, 1, 2)),
    _flag("-Na", "N", "unit cells along a", _cells(0)),
    _flag("-Nb", "N", "unit cells along b", _cells(1)),
    _flag("-Nc", "N", "unit cells along c", _cells(2)),
    _flag(
        "-xtalsize -xtal_size -samplesize -sample_size",
        "MM",
        "crystal size along a, b, c (overrides -N)",
        _crystal_size(0, 1, 2),
    ),
    _flag("-xtal_thick -xtal_x -sample_thick -sample_x", "MM", "crystal size along a", _crystal_size(0)),
    _flag("-xtal_width -xtal_y -sample_width -sample_y -width", "MM", "crystal size along b", _crystal_size(1)),
    _flag("-xtal_height -xtal_z -sample_height -sample_z -height", "MM", "crystal size along c", _crystal_size(2)),
    _flag(
        "-square_xtal",
        "",
        "parallelepiped crystal, sincg spots (default)",
        _constant("crystal.shape", CrystalShape.SQUARE),
    ),
    _flag("-round_xtal", "", "ellipsoidal crystal, sinc3 spots", _constant("crystal.shape", CrystalShape.ROUND)),
    _flag("-gauss_xtal", "", "Gaussian spots", _constant("crystal.shape", CrystalShape.GAUSS)),
    _flag("-tophat_spots -binary_spots", "", "flat-top spots", _constant("crystal.shape", CrystalShape.TOPHAT)),
    _flag("-fudge", "X", "spot-shape scale factor", _number_to("crystal.fudge")),
    _flag(
        "-mosaic -mosaicity -mosaic_spread", "DEG", "isotropic mosaic spread", _number_to("crystal.mosaic_spread_deg")
    ),
    _flag("-mosaic_dom -mosaic_domains", "N", "number of mosaic domains", _integer_to("crystal.mosaic_domains")),
    _flag("-mosaic_seed", "N", "seed for the mosaic domains (default 12345678)", _integer_to("crystal.mosaic_seed")),
    _flag("-phi", "DEG", "starting spindle angle", _number_to("crystal.phi0_deg")),
    _flag("-osc", "DEG", "oscillation range", _number_to("crystal.osc_deg")),
    _flag("-phistep", "DEG", "spindle step", _number_to("crystal.phistep_deg")),
    _flag("-phisteps", "N", "number of spindle steps", _integer_to("crystal.phisteps")),
    _flag(
        "-spindle_axis", "X Y Z", "spindle axis (switches to CUSTOM convention)", _custom_vector("crystal.spindle_axis")
    ),
    # structure factors
    _flag("-hkl", "FILE", "P1 reflection list 'h k l F'", _value("structure.hkl_path", _readable_file)),
    _flag("-default_F", "F", "F of reflections missing from the list", _number_to("structure.default_F")),
    _flag(
        "-interpolate", "", "tricubic interpolation of F between reflections", _constant("structure.interpolate", True)
    ),
    _flag("-nointerpolate", "", "nearest-reflection F", _constant("structure.interpolate", False)),
    _flag(
        "-dump",
        "FILE",
        "binary F cache (default Fdump.bin)",
        _value("structure.dump_path", lambda flag, text: Path(text)),
    ),
    # beam
    _flag("-lambda -wave -wavelength", "A", "wavelength", _number_to("beam.wavelength_A")),
    _flag("-energy", "EV", "photon energy (sets the wavelength)", _apply_energy),
    _flag("-dispersion", "PCT", "spectral width", _number_to("beam.dispersion_pct")),
    _flag(
        "-dispstep", "PCT", "spectral step (nanobrag; nanoBragg has no flag for it)", _number_to("beam.dispstep_pct")
    ),
    _flag("-dispsteps", "N", "number of wavelengths", _integer_to("beam.dispsteps")),
    _flag(
        "-divergence",
        "MRAD",
        "horizontal and vertical divergence range",
        _number_to("beam.hdivrange_mrad", "beam.vdivrange_mrad"),
    ),
    _flag("-hdivrange", "MRAD", "horizontal divergence range", _number_to("beam.hdivrange_mrad")),
    _flag("-vdivrange", "MRAD", "vertical divergence range", _number_to("beam.vdivrange_mrad")),
    _flag("-hdivstep", "MRAD", "horizontal divergence step", _number_to("beam.hdivstep_mrad")),
    _flag("-vdivstep", "MRAD", "vertical divergence step", _number_to("beam.vdivstep_mrad")),
    _flag("-hdivsteps", "N", "horizontal divergence steps", _integer_to("beam.hdivsteps")),
    _flag("-vdivsteps", "N", "vertical divergence steps", _integer_to("beam.vdivsteps")),
    _flag(
        "-divsteps", "N", "horizontal and vertical divergence steps", _integer_to("beam.hdivsteps", "beam.vdivsteps")
    ),
    _flag("-round_div", "", "cut the divergence grid to an ellipse (default)", _constant("beam.round_div", True)),
    _flag("-square_div", "", "full divergence grid", _constant("beam.round_div", False)),
    _flag("-sourcefile", "FILE", "sources: X Y Z weight lambda per line", _value("beam.sourcefile", _readable_file)),
    _flag("-fluence", "PH/M2", "incident fluence", _number_to("beam.fluence")),
    _flag("-flux", "PH/S", "incident flux (with -exposure, -beamsize)", _number_to("beam.flux")),
    _flag("-exposure", "S", "exposure time", _number_to("beam.exposure_s")),
    _flag("-beamsize", "MM", "beam size", _number_to("beam.beamsize_mm")),
    _flag("-polar", "K", "Kahn polarization factor (turns -nopolar off)", _apply_polar),
    _flag("-nopolar", "", "no polarization correction", _constant("beam.nopolar", True)),
    _flag("-dmin", "A", "skip scattering beyond this resolution", _number_to("beam.dmin_A")),
    _flag("-water", "UM", "water background thickness", _number_to("beam.water_um")),
    # detector
    _flag(
        "-distance",
        "MM",
        "sample to detector distance along the beam (pivot BEAM)",
        _number_to("detector.distance_mm", pivot=Pivot.BEAM),
    ),
    _flag(
        "-close_distance",
        "MM",
        "sample to detector plane distance (pivot SAMPLE)",
        _number_to("detector.close_distance_mm", pivot=Pivot.SAMPLE),
    ),
    _flag("-detsize", "MM", "detector size, both axes", _number_to("detector.detsize_f_mm", "detector.detsize_s_mm")),
    _flag("-detsize_f", "MM", "detector size, fast axis", _number_to("detector.detsize_f_mm")),
    _flag("-detsize_s", "MM", "detector size, slow axis", _number_to("detector.detsize_s_mm")),
    _flag("-detpixels", "N", "detector pixels, both axes", _apply_detpixels("detector.fpixels", "detector.spixels")),
    _flag("-detpixels_f -detpixels_x", "N", "detector pixels, fast axis", _apply_detpixels("detector.fpixels")),
    _flag("-detpixels_s -detpixels_y", "N", "detector pixels, slow axis", _apply_detpixels("detector.spixels")),
    _flag("-pixel", "MM", "pixel size", _number_to("detector.pixel_mm")),
    _flag("-Xbeam", "MM", "direct-beam position, fast (pivot BEAM)", _number_to("detector.Xbeam_mm", pivot=Pivot.BEAM)),
    _flag("-Ybeam", "MM", "direct-beam position, slow (pivot BEAM)", _number_to("detector.Ybeam_mm", pivot=Pivot.BEAM)),
    _flag("-Xclose", "MM", "near point, fast (pivot SAMPLE)", _number_to("detector.Xclose_mm", pivot=Pivot.SAMPLE)),
    _flag("-Yclose", "MM", "near point, slow (pivot SAMPLE)", _number_to("detector.Yclose_mm", pivot=Pivot.SAMPLE)),
    _flag("-ORGX", "PIXELS", "XDS origin, fast (pivot SAMPLE)", _number_to("detector.ORGX", pivot=Pivot.SAMPLE)),
    _flag("-ORGY", "PIXELS", "XDS origin, slow (pivot SAMPLE)", _number_to("detector.ORGY", pivot=Pivot.SAMPLE)),
    _flag("-pivot", "beam|sample", "detector pivot", _apply_pivot),
    _flag("-mosflm", "", "MOSFLM convention (default; pivot BEAM)", _convention(Convention.MOSFLM, Pivot.BEAM)),
    _flag("-xds", "", "XDS convention (pivot SAMPLE)", _convention(Convention.XDS, Pivot.SAMPLE)),
    _flag("-adxv", "", "ADXV convention (pivot BEAM)", _convention(Convention.ADXV, Pivot.BEAM)),
    _flag("-denzo", "", "DENZO convention (pivot BEAM)", _convention(Convention.DENZO, Pivot.BEAM)),
    _flag("-dials", "", "DIALS convention (pivot SAMPLE)", _convention(Convention.DIALS, Pivot.SAMPLE)),
    _flag("-fdet_vector", "X Y Z", "fast pixel axis (CUSTOM)", _custom_vector("detector.fdet_vector")),
    _flag("-sdet_vector", "X Y Z", "slow pixel axis (CUSTOM)", _custom_vector("detector.sdet_vector")),
    _flag("-odet_vector", "X Y Z", "detector normal (CUSTOM)", _custom_vector("detector.odet_vector")),
    _flag("-beam_vector", "X Y Z", "beam direction (CUSTOM)", _custom_vector("detector.beam_vector")),
    _flag(
        "-polar_vector", "X Y Z", "E-vector polarization direction (CUSTOM)", _custom_vector("detector.polar_vector")
    ),
    _flag("-twotheta_axis", "X Y Z", "two-theta rotation axis (CUSTOM)", _custom_vector("detector.twotheta_axis")),
    _flag("-pix0_vector", "X Y Z", "sample to first pixel, metres (CUSTOM)", _custom_vector("detector.pix0_vector_m")),
    _flag("-detector_rotx", "DEG", "detector rotation about x", _number_to("detector.rotx_deg")),
    _flag("-detector_roty", "DEG", "detector rotation about y", _number_to("detector.roty_deg")),
    _flag("-detector_rotz", "DEG", "detector rotation about z", _number_to("detector.rotz_deg")),
    _flag(
        "-twotheta",
        "DEG",
        "detector two-theta swing (pivot SAMPLE)",
        _number_to("detector.twotheta_deg", pivot=Pivot.SAMPLE),
    ),
    _flag("-curved_det", "", "all pixels at the same distance from the sample", _constant("detector.curved", True)),
    _flag("-point_pixel", "", "1/R^2 solid angle, no obliquity", _constant("detector.point_pixel", True)),
    _flag(
        "-detector_abs -detector_absorb -detector_absorption",
        "UM|inf",
        "sensor attenuation depth; inf or 0: none",
        _apply_detector_abs,
    ),
    _flag("-detector_thick", "UM", "sensor thickness", _number_to("detector.thick_um")),
    _flag("-detector_thicksteps -thicksteps", "N", "sensor layers", _integer_to("detector.thicksteps")),
    _flag("-roi", "XMIN XMAX YMIN YMAX", "render only these pixels (inclusive)", _apply_roi),
    _flag("-oversample", "N", "sub-pixels per pixel edge", _integer_to("detector.oversample")),
    _flag("-oversample_thick", "", "absorption per sub-pixel", _constant("detector.oversample_thick", True)),
    _flag("-oversample_polar", "", "polarization per sub-pixel", _constant("detector.oversample_polar", True)),
    _flag("-oversample_omega", "", "solid angle per sub-pixel", _constant("detector.oversample_omega", True)),
    # output
    _flag(
        "-floatfile -floatimage", "FILE", "raw float32 image (default floatimage.bin)", _output_file("output.floatfile")
    ),
    _flag("-intfile -intimage", "FILE", "SMV image, scaled (default intimage.img)", _output_file("output.intfile")),
    _flag(
        "-pgmfile -pgmimage",
        "FILE",
        "8-bit PGM picture (default image.pgm)",
        _output_file("output.pgmfile", "write_pgm"),
    ),
    _flag(
        "-noisefile -noiseimage",
        "FILE",
        "SMV image with Poisson noise (default noiseimage.img)",
        _output_file("output.noisefile", "write_noise"),
    ),
    _flag("-pngfile", "FILE", "8-bit PNG picture (nanobrag)", _output_file("output.pngfile")),
    _flag("-nopgm", "", "no PGM picture", _enable("write_pgm", False)),
    _flag("-nonoise", "", "no noise image", _enable("write_noise", False)),
    _flag("-scale", "X", "int-image scale (default: 55000/max)", _number_to("output.intfile_scale")),
    _flag("-pgmscale", "X", "PGM scale (default: 250/(5 rmsd)); turns the PGM on", _apply_pgmscale),
    _flag("-adc", "COUNTS", "offset added to SMV pixels (default 40)", _number_to("output.adc_offset")),
    _flag("-seed", "N", "noise seed (default: time)", _integer_to("output.seed")),
    # nanobrag's own
    _flag(
        "-dtype",
        "float32|float64",
        "floating-point precision (default float64, like nanoBragg)",
        _run_choice("run.dtype", ("float32", "float64")),
    ),
    _flag("-device", "cpu|cuda", "where to compute (default cpu)", _run_choice("run.device", ("cpu", "cuda"))),
    _flag(
        "-compile", "", "compile the lattice hot loop with torch.compile (one-off cost)", _constant("run.compile", True)
    ),
    _flag("-quiet", "", "print nothing but errors", _constant("run.quiet", True)),
    # accepted for compatibility, no effect
    _flag("-noprogress -progress -printout", "", "display options; no effect", _nothing),
    _flag("-printout_pixel", "F S", "display option; no effect", _checked_numbers(_integer)),
    _flag(
        "-density -sample_density -MW -molecular_weight",
        "X",
        "ignored (nanoBragg overwrites it too)",
        _checked_numbers(_number),
    ),
    # parsed by nanoBragg, refused here
    _flag(
        "-img",
        "FILE",
        "not supported: geometry from an SMV header",
        _not_supported("reading geometry from an SMV header"),
    ),
    _flag("-mask", "FILE", "not supported: SMV pixel mask", _not_supported("an SMV pixel mask")),
    _flag(
        "-stol -4stol -Q",
        "FILE",
        "not supported: amorphous structure factors",
        _not_supported("an amorphous S(Q) file"),
    ),
    _flag("-stolout", "FILE", "not supported: S(Q) output", _not_supported("S(Q) output")),
    _flag("-coherent", "", "not supported: coherent addition", _not_supported("coherent addition")),
)

_BY_NAME: dict[str, Flag] = {name: flag for flag in FLAGS for name in flag.names}
assert len(_BY_NAME) == sum(len(flag.names) for flag in FLAGS), "a flag name appears twice in FLAGS"


def flag_help() -> str:
    """One line per flag, for ``nanobrag -h``."""
    lines = [
        "usage: nanobrag [FLAGS]       nanoBragg's flags (see docs/cli.md)",
        "       nanobrag COMMAND ...   nanobrag's own commands: probe-gradients, refine, version (COMMAND --help)",
        "",
    ]
    for flag in FLAGS:
        aliases = f" (also {', '.join(flag.names[1:])})" if len(flag.names) > 1 else ""
        lines.append(f"  {flag.names[0]} {flag.metavar}".ljust(30) + f" {flag.help}{aliases}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_flags(argv: Sequence[str]) -> tuple[SimulationConfig, OutputConfig, RunOptions]:
    """Turn nanoBragg's command-line arguments into configuration; bad input raises InputError."""
    draft = _Draft()
    position = 0
    while position < len(argv):
        name = argv[position]
        flag = _BY_NAME.get(name)
        if flag is None:
            raise InputError(_unknown(name))
        following = argv[position + 1 :]
        count = flag.count(following) if callable(flag.count) else flag.count
        if len(following) < count:
            raise InputError(
                f"{name}: expected {count} value{'s' if count > 1 else ''} ({flag.metavar}), got {len(following)}"
            )
        flag.apply(draft, name, list(following[:count]))
        position += 1 + count
    return _finish(draft)


def _unknown(arg: str) -> str:
    if not arg.startswith("-"):
        return f"unexpected argument {arg!r}"
    close = difflib.get_close_matches(arg, _BY_NAME, n=1)
    return f"unknown flag {arg}" + (f" (did you mean {close[0]}?)" if close else "")


def _finish(draft: _Draft) -> tuple[SimulationConfig, OutputConfig, RunOptions]:
    crystal = draft.sections["crystal"]
    if draft.cell_parts is not None:
        a, b, c, alpha, beta, gamma = draft.cell_parts
        if not a > 0:
            raise InputError(f"{draft.set_by[('crystal', 'cell')]}: cell edge a must be positive")
        # nanoBragg's defaults for what is missing or not positive.
        crystal["cell"] = (a, b if b > 0 else a, c if c > 0 else a) + tuple(
            x if x > 0 else 90.0 for x in (alpha, beta, gamma)
        )
    if "cell" not in crystal and "mosflm_matrix" not in crystal:
        raise InputError("no crystal: give -cell a b c [alpha beta gamma] or -mat FILE")
    structure = draft.sections["structure"]
    dump = structure.setdefault("dump_path", Path("Fdump.bin"))  # nanoBragg's cache in the working directory
    if "hkl_path" not in structure and not structure.get("default_F") and not dump.exists():
        raise InputError(f"no structure factors: give -hkl FILE or a non-zero -default_F (no {dump} to read)")

    output = draft.sections["output"]
    output.setdefault("floatfile", Path("floatimage.bin"))
    output.setdefault("intfile", Path("intimage.img"))
    output["pgmfile"] = output.get("pgmfile", Path("image.pgm")) if draft.write_pgm else None
    output["noisefile"] = output.get("noisefile", Path("noiseimage.img")) if draft.write_noise else None

    try:
        simulation = SimulationConfig.model_validate(
            {name: draft.sections[name] for name in ("crystal", "structure", "detector", "beam")}
        )
        outputs = OutputConfig.model_validate(output)
    except ValidationError as err:
        raise InputError(_validation_message(err, draft)) from None
    return simulation, outputs, RunOptions(**draft.sections["run"])


def _validation_message(err: ValidationError, draft: _Draft) -> str:
    """The first validation problem, attributed to the flag that set the offending field."""
    problem = err.errors()[0]
    location = tuple(str(part) for part in problem["loc"])
    if len(location) == 1:  # OutputConfig errors have no section in their location
        location = ("output",) + location
    flag = draft.set_by.get(location[:2], ".".join(location))
    message = problem["msg"].removeprefix("Value error, ")
    return f"{flag}: {message}"
