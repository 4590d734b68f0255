"""nanoBragg's command line, read by nanoBragg's own rules, into nanobrag's configuration.

nanoBragg reads ``argv`` in one pass. For every argument that starts with ``-`` it tries each
``if`` of its argument loop in order; a test is a substring search (``strstr``), sometimes an exact
comparison or a length check, plus "enough arguments follow". Several tests can fire for one
argument (``-twotheta_axis 1 0 0`` also sets the two-theta angle to 1 degree, ``-misset_seed 3 ...``
also sets the misset angles), a few stop the search (C's ``continue``), and an argument that no
test matches is ignored. Values are read from the arguments after the flag without consuming them,
so an argument read as a value is still examined as a flag. :data:`RULES` is that loop, one
:class:`Rule` per ``if``, in C's order (read from nanoBragg.c's ``main``); :func:`parse_flags`
replays it.

Where nanobrag departs from C, it says so instead of guessing:

- a malformed value for an option the argument names (``-distance far``, a missing value) is an
  error, where C's ``atof`` would read 0; values that an argument feeds to another option only by
  C's substring rule are read as C reads them (``atof``/``atoi``), and a note says so;
- an argument that C ignores gets a one-line warning (``-strict``: an error) and the run goes on.

``-img`` and ``-mask`` are read before the other flags, as nanoBragg does: their SMV headers set the
detector and beam, and any flag on the command line overrides them.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .compat import Quirks
from .config import Convention, CrystalShape, OutputConfig, Pivot, SimulationConfig, problem_message
from .errors import InputError
from .io.ctext import c_atof, c_atoi
from .io.matrix import read_mosflm_matrix

__all__ = ["NANOBRAG_FLAGS", "RULES", "Rule", "RunOptions", "Spelling", "flag_help", "parse_flags"]

# nanoBragg converts energy (eV) to wavelength (Angstrom) with this constant.
_HC_EV_ANGSTROM = 12398.42
_C_INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class RunOptions:
    """How to run and what to print, as opposed to what to simulate."""

    dtype: str = "float64"
    device: str = "cpu"
    kernel: str = "auto"  # auto | fused | eager (see nanobrag.renderer.render)
    threads: int | None = None  # None: the cores available to the process
    noise_engine: str = "c"  # c: nanoBragg's generator, pixel for pixel; torch: vectorised Poisson
    quiet: bool = False
    strict: bool = False
    progress: bool = True  # nanoBragg's -progress / -noprogress
    printout: bool = False  # -printout: trace every pixel (or only -printout_pixel's)
    printout_pixel: tuple[int, int] | None = None  # (fast, slow)
    matrix_file: Path | None = None  # -mat, as named on the command line (for the printout)
    amorphous_table: Path | None = None  # -stol/-4stol/-Q: read (and checked) like nanoBragg, never used
    headers_read: tuple[Path, ...] = ()  # -mask, -img: SMV files whose headers set the geometry
    warnings: tuple[str, ...] = ()  # ignored arguments (errors with -strict)
    notes: tuple[str, ...] = ()  # values that an argument also feeds to another option, as in nanoBragg


# ---------------------------------------------------------------------------------------------
# Values: strict where the argument names the option, C's atof/atoi where it does not


@dataclass(frozen=True)
class Values:
    """Converts one rule's arguments: strictly, or as C does for a rule reached by substring only."""

    flag: str
    strict: bool = True

    def number(self, text: str) -> float:
        if not self.strict:
            return c_atof(text)
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isnan(value):  # "nan" parses as a float but is no value of any setting; "inf" is (-detector_abs)
            raise InputError(f"{self.flag}: expected a number, got {text!r}")
        return value

    def integer(self, text: str) -> int:
        if not self.strict:
            return c_atoi(text)
        try:
            value = int(text)
        except ValueError:
            raise InputError(f"{self.flag}: expected an integer, got {text!r}") from None
        if abs(value) > _C_INT_MAX:
            raise InputError(f"{self.flag}: {value} is out of range")
        return value

    def readable_file(self, text: str) -> Path:
        path = Path(text)
        try:  # O_NONBLOCK: a named pipe without a writer would otherwise block here for ever
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        except OSError as err:
            raise InputError(f"{self.flag}: cannot read {text}: {err.strerror}") from None
        return path


# ---------------------------------------------------------------------------------------------
# The draft configuration the flags write into


class _Draft:
    """Plain nested dicts for the config sections, plus which flag set each field (for messages)."""

    def __init__(self, corrected: bool) -> None:
        self.corrected = corrected
        self.quirks = Quirks.of(corrected)
        self.sections: dict[str, dict[str, Any]] = {
            name: {} for name in ("crystal", "structure", "detector", "beam", "output", "run")
        }
        self.set_by: dict[tuple[str, str], str] = {}
        self.cell_parts: list[float] | None = None  # nanoBragg's a, b, c, alpha, beta, gamma as typed
        self.write_pgm = True
        self.write_noise = True
        self.headers_read: list[Path] = []
        self.header_sources: set[str] = set()  # the set_by names of values taken from -img/-mask headers
        self.reading_as: str | None = None  # the option a substring-only rule being applied reads for
        self.read_as: dict[tuple[str, str], str] = {}  # field -> that option, for values set that way

    def set(self, key: str, value: Any, flag: str) -> None:
        section, name = key.split(".")
        self.sections[section][name] = value
        self.set_by[(section, name)] = flag
        if self.reading_as is not None:
            self.read_as[(section, name)] = self.reading_as
        else:
            self.read_as.pop((section, name), None)

    def get(self, key: str, default: Any) -> Any:
        section, name = key.split(".")
        return self.sections[section].get(name, default)

    def set_component(self, key: str, index: int, value: Any, default: tuple[Any, ...], flag: str) -> None:
        parts = list(self.get(key, default))
        parts[index] = value
        self.set(key, tuple(parts), flag)


Apply = Callable[[_Draft, str, list[str], Values], None]


@dataclass(frozen=True)
class Spelling:
    """One of C's tests on the argument: ``strstr`` (or ``strcmp``), with an optional ``strlen`` check."""

    text: str
    exact: bool = False  # strcmp(argv[i], text) == 0 instead of strstr
    length: int | None = None  # and strlen(argv[i]) == length
    longer_than: int | None = None  # and strlen(argv[i]) > longer_than

    def matches(self, token: str) -> bool:
        if self.exact:
            return token == self.text
        if self.text not in token:
            return False
        if self.length is not None and len(token) != self.length:
            return False
        return self.longer_than is None or len(token) > self.longer_than


@dataclass(frozen=True)
class Rule:
    """One ``if`` of nanoBragg's argument loop."""

    spellings: tuple[Spelling, ...]
    metavar: str
    help: str
    apply: Apply
    takes: int | Callable[[Sequence[str]], int]  # values handed to apply (a function of what follows for -cell)
    needs: int  # C's argc test: the rule fires only if this many arguments follow
    stops: bool = False  # C's `continue`: no later rule is tried for this argument
    when: Callable[[Sequence[str]], bool] | None = None  # a further test on the following arguments
    section: str = ""  # where docs/cli.md and -h list it

    @property
    def name(self) -> str:
        return self.spellings[0].text

    def matches(self, token: str) -> bool:
        return any(spelling.matches(token) for spelling in self.spellings)

    def names_exactly(self, token: str) -> bool:
        return any(spelling.text == token for spelling in self.spellings)

    def value_count(self, following: Sequence[str]) -> int:
        return self.takes(following) if callable(self.takes) else self.takes


# ---------------------------------------------------------------------------------------------
# Effects


def _number_to(*keys: str, pivot: Pivot | None = None, scale: float = 1.0) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
        value = values.number(args[0]) * scale
        for key in keys:
            draft.set(key, value, flag)
        if pivot is not None:
            draft.set("detector.pivot", pivot, flag)

    return apply


def _integer_to(*keys: str) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
        value = values.integer(args[0])
        for key in keys:
            draft.set(key, value, flag)

    return apply


def _constant(key: str, value: Any) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
        draft.set(key, value, flag)

    return apply


def _checked_numbers(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    """An option nanoBragg reads and then overwrites: its value is checked and has no effect."""
    for arg in args:
        values.number(arg)


def _nothing(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    """An option with no effect on the image or the files (nanoBragg's too)."""


def _crystal_size(*axes: int) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
        size = values.number(args[0])
        for axis in axes:
            draft.set_component("crystal.xtalsize_mm", axis, size, (None, None, None), flag)

    return apply


def _cells(*axes: int) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
        count = float(values.integer(args[0]))
        for axis in axes:
            draft.set_component("crystal.N", axis, count, (1.0, 1.0, 1.0), flag)

    return apply


def _custom_vector(key: str) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
        draft.set(key, tuple(values.number(arg) for arg in args), flag)
        draft.set("detector.convention", Convention.CUSTOM, flag)

    return apply


def _convention(convention: Convention, pivot: Pivot) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
        draft.set("detector.convention", convention, flag)
        draft.set("detector.pivot", pivot, flag)

    return apply


def _output_file(key: str, enable: str | None = None) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
        draft.set(key, Path(args[0]), flag)
        if enable:
            setattr(draft, enable, True)

    return apply


def _enable(attribute: str, on: bool) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
        setattr(draft, attribute, on)

    return apply


def _cell_count(following: Sequence[str]) -> int:
    """nanoBragg's -cell reads up to six numbers, stopping at the next argument that starts with '-'."""
    count = 0
    while count < min(6, len(following)) and not following[count].startswith("-"):
        count += 1
    return count


def _apply_cell(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    if not args:
        raise InputError(f"{flag}: expected 1 to 6 numbers (a [b c [alpha beta gamma]])")
    parts = draft.cell_parts or [0.0] * 6
    for index, arg in enumerate(args):  # like nanoBragg, later -cell flags overwrite only what they give
        parts[index] = values.number(arg)
    draft.cell_parts = parts
    draft.set_by[("crystal", "cell")] = flag


def _says_random(following: Sequence[str]) -> bool:
    return "rand" in following[0]


def _apply_misset_random(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    draft.set("crystal.misset_random", True, flag)
    draft.set("crystal.misset_deg", None, flag)


def _apply_misset(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    draft.set("crystal.misset_deg", tuple(values.number(arg) for arg in args), flag)
    draft.set("crystal.misset_random", False, flag)


def _apply_mat(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    try:
        draft.set("crystal.mosflm_matrix", read_mosflm_matrix(args[0]), flag)
    except InputError as err:
        raise InputError(f"{flag}: {err}") from None
    draft.set("run.matrix_file", Path(args[0]), flag)


def _apply_energy(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    energy = values.number(args[0])
    if values.strict and not energy > 0:
        raise InputError(f"{flag}: photon energy must be positive, got {args[0]}")
    draft.set("beam.wavelength_A", _HC_EV_ANGSTROM / energy if energy else math.inf, flag)


def _apply_detector_abs(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    if "inf" in args[0]:  # nanoBragg's test: the text contains "inf", or the number is 0
        depth = math.inf
    else:
        depth = values.number(args[0])
        if values.strict and depth < 0:
            raise InputError(f"{flag}: attenuation depth must be positive, 0 or inf, got {args[0]}")
    if depth == 0.0 or math.isinf(depth):
        # nanoBragg: "inf" or 0 turns absorption off, and zeroes the sensor thickness as well.
        draft.set("detector.absorption_depth_um", math.inf, flag)
        draft.set("detector.thick_um", 0.0, flag)
    else:
        draft.set("detector.absorption_depth_um", depth, flag)


def _apply_detpixels(*keys: str) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
        count = values.integer(args[0])
        if count < 0:
            raise InputError(f"{flag}: pixel count must not be negative, got {count}")
        for key in keys:  # 0 means "not given" in nanoBragg: the size then comes from -detsize
            draft.set(key, count or None, flag)

    return apply


def _apply_polar(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    draft.set("beam.polarization", values.number(args[0]), flag)
    draft.set("beam.nopolar", False, flag)  # as in nanoBragg, -polar re-enables the correction


def _apply_pgmscale(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    draft.set("output.pgm_scale", values.number(args[0]), flag)
    draft.write_pgm = True


def _apply_roi(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    draft.set("detector.roi", tuple(values.integer(arg) for arg in args), flag)


def _apply_pivot(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    # nanoBragg tests the value for "sample", then for "beam"; the later test wins.
    pivot = Pivot.BEAM if "beam" in args[0] else Pivot.SAMPLE if "sample" in args[0] else None
    if pivot is None:
        if values.strict:
            raise InputError(f"{flag}: expected one of beam, sample, got {args[0]!r}")
        return
    draft.set("detector.pivot", pivot, flag)


def _apply_amorphous_table(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    from .io.sources import read_text_columns

    # nanoBragg reads the table (and stops when it holds no data) but never uses it for the image.
    read_text_columns(values.readable_file(args[0]), ("stol", "F"), "S(Q) table")
    draft.set("run.amorphous_table", Path(args[0]), flag)


def _apply_printout_pixel(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    draft.set("run.printout_pixel", (values.integer(args[0]), values.integer(args[1])), flag)


def _value_file(key: str) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
        draft.set(key, values.readable_file(args[0]), flag)

    return apply


# ---------------------------------------------------------------------------------------------
# -img and -mask: SMV headers read before the other flags


def _apply_smv_header(draft: _Draft, flag: str, path: Path, is_mask: bool) -> None:
    """Seed the draft from an SMV header as nanoBragg does; later flags override these values."""
    from .io.smv import read_smv, read_smv_header_text, smv_header_value

    try:
        _, pixels = read_smv(path)
        text = read_smv_header_text(path)
    except InputError as err:
        raise InputError(f"{flag}: {err}") from None
    quirks = draft.quirks
    spixels, fpixels = pixels.shape

    def value(keyword: str, exact: bool = False) -> float | None:
        found = smv_header_value(text, keyword, last_substring=not exact)
        return None if found is None or math.isnan(found) else found

    def put(key: str, found: Any, keyword: str) -> None:
        source = f"{flag} {path} ({keyword})"  # an error in the value then names the file and the keyword
        draft.header_sources.add(source)
        draft.set(key, found, source)

    put("detector.fpixels", fpixels, "SIZE1")
    put("detector.spixels", spixels, "SIZE2")
    pixel_mm = value("PIXEL_SIZE")
    if pixel_mm is not None:
        put("detector.pixel_mm", pixel_mm, "PIXEL_SIZE")
    pixel_mm = draft.get("detector.pixel_mm", 0.1)
    distance = value("DISTANCE", exact=not quirks.header_distance_is_close_distance)
    if distance is not None:
        put("detector.distance_mm", distance, "DISTANCE")
    for keyword, key in (
        ("CLOSE_DISTANCE", "detector.close_distance_mm"),
        ("WAVELENGTH", "beam.wavelength_A"),
        ("BEAM_CENTER_X", "detector.Xbeam_mm"),
        ("ORGX", "detector.ORGX"),
        ("ORGY", "detector.ORGY"),
        ("PHI", "crystal.phi0_deg"),
        ("OSC_RANGE", "crystal.osc_deg"),
    ):
        found = value(keyword)
        if found is not None:
            put(key, found, keyword)
    beam_y = value("BEAM_CENTER_Y")
    if beam_y is not None:
        if is_mask and quirks.mask_beam_center_y_flipped:
            beam_y = pixel_mm * spixels - beam_y
        put("detector.Ybeam_mm", beam_y, "BEAM_CENTER_Y")
    twotheta = value("TWOTHETA")
    if twotheta is not None and not quirks.header_twotheta_ignored:
        put("detector.twotheta_deg", twotheta, "TWOTHETA")
    if is_mask:
        draft.set("detector.mask_path", path, flag)
    draft.headers_read.append(path)


def _preread_headers(draft: _Draft, argv: Sequence[str]) -> None:
    """nanoBragg's first pass: the last -mask and the last -img, mask first."""
    found: dict[str, tuple[str, str]] = {}
    for position, token in enumerate(argv):
        if token.startswith("-") and position + 1 < len(argv):
            for key in ("-img", "-mask"):
                if key in token:
                    found[key] = (token, argv[position + 1])
    for key, is_mask in (("-mask", True), ("-img", False)):
        if key in found:
            flag, name = found[key]
            _apply_smv_header(draft, flag, Values(flag).readable_file(name), is_mask)


# ---------------------------------------------------------------------------------------------
# The table: nanoBragg's argument loop, one row per `if`, in C's order


def _s(text: str, **kw: Any) -> Spelling:
    return Spelling(text, **kw)


def _rule(
    spellings: str | tuple[Spelling, ...],
    metavar: str,
    help: str,
    apply: Apply,
    section: str,
    *,
    takes: int | Callable[[Sequence[str]], int] | None = None,
    needs: int | None = None,
    stops: bool = False,
    when: Callable[[Sequence[str]], bool] | None = None,
) -> Rule:
    if isinstance(spellings, str):
        spellings = tuple(Spelling(text) for text in spellings.split())
    if takes is None:
        takes = len(metavar.split())
    if needs is None:
        needs = takes if isinstance(takes, int) else 1
    return Rule(spellings, metavar, help, apply, takes, needs, stops, when, section)


_XTAL, _SF, _BEAM, _DET, _OUT, _SHOW = "crystal", "structure factors", "beam", "detector", "output", "display"

RULES: tuple[Rule, ...] = (
    _rule("-Na", "N", "unit cells along a", _cells(0), _XTAL, stops=True),
    _rule("-Nb", "N", "unit cells along b", _cells(1), _XTAL, stops=True),
    _rule("-Nc", "N", "unit cells along c", _cells(2), _XTAL, stops=True),
    _rule((_s("-N", exact=True),), "N", "unit cells along a, b and c", _cells(0, 1, 2), _XTAL, stops=True),
    _rule(
        "-cell",
        "a [b c [al be ga]]",
        "unit cell (A, deg); b, c default to a, angles to 90",
        _apply_cell,
        _XTAL,
        takes=_cell_count,
        needs=1,
    ),
    _rule(
        "-misset", "random", "random crystal orientation", _apply_misset_random, _XTAL, stops=True, when=_says_random
    ),
    _rule("-misset", "X Y Z", "crystal rotations about x, y, z (deg)", _apply_misset, _XTAL),
    _rule("-samplesize -sample_size", "MM", "crystal size along a, b, c", _crystal_size(0, 1, 2), _XTAL),
    _rule("-sample_thick -sample_x", "MM", "crystal size along a", _crystal_size(0), _XTAL),
    _rule("-sample_width -sample_y -width", "MM", "crystal size along b", _crystal_size(1), _XTAL),
    _rule("-sample_heigh -sample_z -heigh", "MM", "crystal size along c", _crystal_size(2), _XTAL),
    _rule("-xtalsize -xtal_size", "MM", "crystal size along a, b, c (overrides -N)", _crystal_size(0, 1, 2), _XTAL),
    _rule("-xtal_thick -xtal_x", "MM", "crystal size along a", _crystal_size(0), _XTAL),
    _rule("-xtal_width -xtal_y -width", "MM", "crystal size along b", _crystal_size(1), _XTAL),
    _rule("-xtal_heigh -xtal_z -heigh", "MM", "crystal size along c", _crystal_size(2), _XTAL),
    _rule("-density -sample_den", "X", "no effect (nanoBragg overwrites it)", _checked_numbers, _XTAL),
    _rule((_s("-MW", exact=True), _s("-molec")), "X", "no effect (nanoBragg overwrites it)", _checked_numbers, _XTAL),
    _rule(
        "-Xbeam",
        "MM",
        "direct-beam position, fast (pivot BEAM)",
        _number_to("detector.Xbeam_mm", pivot=Pivot.BEAM),
        _DET,
    ),
    _rule(
        "-Ybeam",
        "MM",
        "direct-beam position, slow (pivot BEAM)",
        _number_to("detector.Ybeam_mm", pivot=Pivot.BEAM),
        _DET,
    ),
    _rule(
        "-Xclose", "MM", "near point, fast (pivot SAMPLE)", _number_to("detector.Xclose_mm", pivot=Pivot.SAMPLE), _DET
    ),
    _rule(
        "-Yclose", "MM", "near point, slow (pivot SAMPLE)", _number_to("detector.Yclose_mm", pivot=Pivot.SAMPLE), _DET
    ),
    _rule("-ORGX", "PIXELS", "XDS origin, fast (pivot SAMPLE)", _number_to("detector.ORGX", pivot=Pivot.SAMPLE), _DET),
    _rule("-ORGY", "PIXELS", "XDS origin, slow (pivot SAMPLE)", _number_to("detector.ORGY", pivot=Pivot.SAMPLE), _DET),
    _rule("-pivot", "beam|sample", "detector pivot", _apply_pivot, _DET),
    _rule("-mosflm", "", "MOSFLM convention (default; pivot BEAM)", _convention(Convention.MOSFLM, Pivot.BEAM), _DET),
    _rule("-xds", "", "XDS convention (pivot SAMPLE)", _convention(Convention.XDS, Pivot.SAMPLE), _DET),
    _rule("-adxv", "", "ADXV convention (pivot BEAM)", _convention(Convention.ADXV, Pivot.BEAM), _DET),
    _rule("-denzo", "", "DENZO convention (pivot BEAM)", _convention(Convention.DENZO, Pivot.BEAM), _DET),
    # nanoBragg's -dials records the BEAM pivot (the convention then imposes SAMPLE unless a vector flag follows)
    _rule("-dials", "", "DIALS convention (pivot SAMPLE)", _convention(Convention.DIALS, Pivot.BEAM), _DET),
    _rule("-fdet_vector", "X Y Z", "fast pixel axis (CUSTOM)", _custom_vector("detector.fdet_vector"), _DET),
    _rule("-sdet_vector", "X Y Z", "slow pixel axis (CUSTOM)", _custom_vector("detector.sdet_vector"), _DET),
    _rule("-odet_vector", "X Y Z", "detector normal (CUSTOM)", _custom_vector("detector.odet_vector"), _DET),
    _rule("-beam_vector", "X Y Z", "beam direction (CUSTOM)", _custom_vector("detector.beam_vector"), _BEAM),
    _rule("-polar_vector", "X Y Z", "E-vector polarization (CUSTOM)", _custom_vector("detector.polar_vector"), _BEAM),
    _rule("-spindle_axis", "X Y Z", "spindle axis (CUSTOM)", _custom_vector("crystal.spindle_axis"), _XTAL),
    _rule("-twotheta_axis", "X Y Z", "two-theta axis (CUSTOM)", _custom_vector("detector.twotheta_axis"), _DET),
    _rule(
        "-pix0_vector",
        "X Y Z",
        "sample to first pixel, m (CUSTOM; nanoBragg then overwrites it)",
        _custom_vector("detector.pix0_vector_m"),
        _DET,
    ),
    _rule(
        "-distance",
        "MM",
        "sample to detector along the beam (pivot BEAM)",
        _number_to("detector.distance_mm", pivot=Pivot.BEAM),
        _DET,
    ),
    _rule(
        "-close_distance",
        "MM",
        "sample to detector plane (pivot SAMPLE)",
        _number_to("detector.close_distance_mm", pivot=Pivot.SAMPLE),
        _DET,
    ),
    _rule("-detector_abs", "UM|inf", "sensor attenuation depth; inf or 0: none", _apply_detector_abs, _DET),
    _rule((_s("-detector_thick", length=15),), "UM", "sensor thickness", _number_to("detector.thick_um"), _DET),
    _rule("-detector_thicksteps", "N", "sensor layers", _integer_to("detector.thicksteps"), _DET),
    _rule("-thicksteps", "N", "sensor layers", _integer_to("detector.thicksteps"), _DET),
    _rule(
        "-twotheta",
        "DEG",
        "detector two-theta swing (pivot SAMPLE)",
        _number_to("detector.twotheta_deg", pivot=Pivot.SAMPLE),
        _DET,
    ),
    _rule("-detector_rotx", "DEG", "detector rotation about x", _number_to("detector.rotx_deg"), _DET),
    _rule("-detector_roty", "DEG", "detector rotation about y", _number_to("detector.roty_deg"), _DET),
    _rule("-detector_rotz", "DEG", "detector rotation about z", _number_to("detector.rotz_deg"), _DET),
    _rule(
        (_s("-detsize", length=8),),
        "MM",
        "detector size, both axes",
        _number_to("detector.detsize_f_mm", "detector.detsize_s_mm"),
        _DET,
    ),
    _rule("-detsize_f", "MM", "detector size, fast axis", _number_to("detector.detsize_f_mm"), _DET),
    _rule("-detsize_s", "MM", "detector size, slow axis", _number_to("detector.detsize_s_mm"), _DET),
    _rule(
        (_s("-detpixels", length=10),),
        "N",
        "detector pixels, both axes",
        _apply_detpixels("detector.fpixels", "detector.spixels"),
        _DET,
    ),
    _rule("-detpixels_f -detpixels_x", "N", "detector pixels, fast axis", _apply_detpixels("detector.fpixels"), _DET),
    _rule("-detpixels_s -detpixels_y", "N", "detector pixels, slow axis", _apply_detpixels("detector.spixels"), _DET),
    # nanoBragg acts on -curved_det only when another argument follows it
    _rule("-curved_det", "", "all pixels at the same distance", _constant("detector.curved", True), _DET, needs=1),
    _rule("-pixel", "MM", "pixel size", _number_to("detector.pixel_mm"), _DET),
    _rule("-point_pixel", "", "1/R^2 solid angle, no obliquity", _constant("detector.point_pixel", True), _DET),
    _rule((_s("-polar", length=6),), "K", "Kahn polarization factor (turns -nopolar off)", _apply_polar, _BEAM),
    _rule("-nopolar", "", "no polarization correction", _constant("beam.nopolar", True), _BEAM),
    _rule(
        "-oversample_thick",
        "",
        "absorption per sub-pixel",
        _constant("detector.oversample_thick", True),
        _DET,
        stops=True,
    ),
    _rule(
        "-oversample_polar",
        "",
        "polarization per sub-pixel",
        _constant("detector.oversample_polar", True),
        _DET,
        stops=True,
    ),
    _rule(
        "-oversample_omega",
        "",
        "solid angle per sub-pixel",
        _constant("detector.oversample_omega", True),
        _DET,
        stops=True,
    ),
    _rule("-oversample", "N", "sub-pixels per pixel edge", _integer_to("detector.oversample"), _DET),
    _rule("-roi", "XMIN XMAX YMIN YMAX", "render only these pixels (inclusive)", _apply_roi, _DET),
    _rule("-lambda -wave", "A", "wavelength", _number_to("beam.wavelength_A"), _BEAM),
    _rule("-energy", "EV", "photon energy (sets the wavelength)", _apply_energy, _BEAM),
    _rule("-fluence", "PH/M2", "incident fluence", _number_to("beam.fluence"), _BEAM),
    _rule("-flux", "PH/S", "incident flux (with -exposure, -beamsize)", _number_to("beam.flux"), _BEAM),
    _rule("-exposure", "S", "exposure time", _number_to("beam.exposure_s"), _BEAM),
    _rule("-beamsize", "MM", "beam size", _number_to("beam.beamsize_mm"), _BEAM),
    _rule(
        (_s("-mosaic", length=7), _s("-mosaici"), _s("-mosaic_spr")),
        "DEG",
        "isotropic mosaic spread",
        _number_to("crystal.mosaic_spread_deg"),
        _XTAL,
    ),
    _rule("-mosaic_dom", "N", "mosaic domains", _integer_to("crystal.mosaic_domains"), _XTAL),
    _rule("-dispersion", "PCT", "spectral width", _number_to("beam.dispersion_pct"), _BEAM),
    _rule("-dispsteps", "N", "wavelengths", _integer_to("beam.dispsteps"), _BEAM),
    _rule(
        "-divergence",
        "MRAD",
        "horizontal and vertical divergence range",
        _number_to("beam.hdivrange_mrad", "beam.vdivrange_mrad"),
        _BEAM,
    ),
    _rule("-hdivrange", "MRAD", "horizontal divergence range", _number_to("beam.hdivrange_mrad"), _BEAM),
    _rule("-vdivrange", "MRAD", "vertical divergence range", _number_to("beam.vdivrange_mrad"), _BEAM),
    _rule((_s("-hdivstep", length=9),), "MRAD", "horizontal divergence step", _number_to("beam.hdivstep_mrad"), _BEAM),
    _rule("-hdivsteps", "N", "horizontal divergence steps", _integer_to("beam.hdivsteps"), _BEAM),
    _rule((_s("-vdivstep", length=9),), "MRAD", "vertical divergence step", _number_to("beam.vdivstep_mrad"), _BEAM),
    _rule("-vdivsteps", "N", "vertical divergence steps", _integer_to("beam.vdivsteps"), _BEAM),
    _rule("-divsteps", "N", "divergence steps, both", _integer_to("beam.hdivsteps", "beam.vdivsteps"), _BEAM),
    _rule(
        "-round_div", "", "cut the divergence grid to an ellipse (default)", _constant("beam.round_div", True), _BEAM
    ),
    _rule("-square_div", "", "full divergence grid", _constant("beam.round_div", False), _BEAM),
    _rule("-adc", "COUNTS", "offset added to SMV pixels (default 40)", _number_to("output.adc_offset"), _OUT),
    _rule((_s("-phi", length=4),), "DEG", "starting spindle angle", _number_to("crystal.phi0_deg"), _XTAL),
    _rule("-osc", "DEG", "oscillation range", _number_to("crystal.osc_deg"), _XTAL),
    _rule((_s("-phistep", length=8),), "DEG", "spindle step", _number_to("crystal.phistep_deg"), _XTAL),
    _rule("-phisteps", "N", "spindle steps", _integer_to("crystal.phisteps"), _XTAL),
    _rule("-dmin", "A", "skip scattering beyond this resolution", _number_to("beam.dmin_A"), _BEAM),
    _rule("-mat", "FILE", "MOSFLM A matrix (orientation and cell)", _apply_mat, _XTAL),
    _rule("-hkl", "FILE", "P1 reflection list 'h k l F'", _value_file("structure.hkl_path"), _SF),
    _rule("-default_F", "F", "F of reflections missing from the list", _number_to("structure.default_F"), _SF),
    _rule(
        "-dump",
        "FILE",
        "binary F cache (default Fdump.bin)",
        lambda draft, flag, args, values: draft.set("structure.dump_path", Path(args[0]), flag),
        _SF,
    ),
    _rule("-img", "FILE", "detector geometry from an SMV header (read first)", _nothing, _DET),
    _rule((_s("-stolout", longer_than=7),), "FILE", "S(Q) output: nanoBragg never writes it", _nothing, _OUT),
    _rule((_s("-stol", length=5),), "FILE", "amorphous S(sin(theta)/lambda) table", _apply_amorphous_table, _BEAM),
    _rule((_s("-4stol", length=6),), "FILE", "amorphous S(4 sin(theta)/lambda) table", _apply_amorphous_table, _BEAM),
    _rule((_s("-Q", length=2),), "FILE", "amorphous S(Q) table", _apply_amorphous_table, _BEAM),
    _rule("-sourcefile", "FILE", "sources: X Y Z weight lambda per line", _value_file("beam.sourcefile"), _BEAM),
    _rule(
        "-floatfile -floatimage",
        "FILE",
        "raw float32 image (default floatimage.bin)",
        _output_file("output.floatfile"),
        _OUT,
    ),
    _rule(
        "-intfile -intimage", "FILE", "SMV image, scaled (default intimage.img)", _output_file("output.intfile"), _OUT
    ),
    _rule(
        "-pgmfile -pgmimage",
        "FILE",
        "8-bit PGM picture (default image.pgm)",
        _output_file("output.pgmfile", "write_pgm"),
        _OUT,
    ),
    _rule(
        "-noisefile -noiseimage",
        "FILE",
        "SMV image with Poisson noise (default noiseimage.img)",
        _output_file("output.noisefile", "write_noise"),
        _OUT,
    ),
    _rule("-nonoise", "", "no noise image", _enable("write_noise", False), _OUT),
    _rule("-nopgm", "", "no PGM picture", _enable("write_pgm", False), _OUT),
    _rule("-scale", "X", "int-image scale (default: 55000/max)", _number_to("output.intfile_scale"), _OUT),
    _rule("-pgmscale", "X", "PGM scale (default: 250/(5 rmsd)); turns the PGM on", _apply_pgmscale, _OUT),
    _rule("-coherent", "", "no effect (nanoBragg parses it and never uses it)", _nothing, _BEAM),
    _rule(
        "-printout",
        "",
        "print the trace of every pixel (or of -printout_pixel's)",
        _constant("run.printout", True),
        _SHOW,
    ),
    _rule("-noprogress", "", "no progress display", _constant("run.progress", False), _SHOW),
    _rule("-progress", "", "progress display", _constant("run.progress", True), _SHOW),
    _rule("-interpolate", "", "tricubic interpolation of F", _constant("structure.interpolate", True), _SF),
    _rule("-nointerpolate", "", "nearest-reflection F", _constant("structure.interpolate", False), _SF),
    _rule("-round_xtal", "", "ellipsoidal crystal, sinc3 spots", _constant("crystal.shape", CrystalShape.ROUND), _XTAL),
    _rule(
        "-square_xtal", "", "parallelepiped crystal (default)", _constant("crystal.shape", CrystalShape.SQUARE), _XTAL
    ),
    _rule("-gauss_xtal", "", "Gaussian spots", _constant("crystal.shape", CrystalShape.GAUSS), _XTAL),
    _rule("-binary_spots -tophat_spots", "", "flat-top spots", _constant("crystal.shape", CrystalShape.TOPHAT), _XTAL),
    _rule("-fudge", "X", "spot-shape scale factor", _number_to("crystal.fudge"), _XTAL),
    _rule("-printout_pixel", "F S", "trace this pixel only (fast, slow)", _apply_printout_pixel, _SHOW),
    _rule("-seed", "N", "noise seed (default: time)", _integer_to("output.seed"), _OUT),
    _rule(
        "-mosaic_seed", "N", "seed for the mosaic domains (default 12345678)", _integer_to("crystal.mosaic_seed"), _XTAL
    ),
    _rule("-misset_seed", "N", "seed for -misset random (default: time)", _integer_to("crystal.misset_seed"), _XTAL),
    _rule("-water", "UM", "water background thickness", _number_to("beam.water_um"), _BEAM),
    # read in nanoBragg's first pass over argv, before every other flag (see _preread_headers)
    _rule("-mask", "FILE", "SMV mask: pixels that are 0 are skipped; its header sets the geometry", _nothing, _DET),
)


@dataclass(frozen=True)
class OwnFlag:
    """A flag nanoBragg does not have (matched exactly; none of them contains a nanoBragg spelling)."""

    name: str
    metavar: str
    help: str
    apply: Apply

    @property
    def takes(self) -> int:
        return len(self.metavar.split())


def _run_choice(key: str, options: Sequence[str]) -> Apply:
    def apply(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
        if args[0] not in options:
            raise InputError(f"{flag}: expected one of {', '.join(options)}, got {args[0]!r}")
        draft.set(key, args[0], flag)

    return apply


def _run_threads(draft: _Draft, flag: str, args: list[str], values: Values) -> None:
    threads = values.integer(args[0])
    if threads < 1:
        raise InputError(f"{flag}: expected a positive number of threads, got {args[0]!r}")
    draft.set("run.threads", threads, flag)


NANOBRAG_FLAGS: tuple[OwnFlag, ...] = (
    OwnFlag("-pngfile", "FILE", "8-bit PNG picture (log stretch)", _output_file("output.pngfile")),
    OwnFlag(
        "-cbffile",
        "FILE",
        "miniCBF image (photons, with the geometry header) for DIALS/XDS",
        _output_file("output.cbffile"),
    ),
    OwnFlag(
        "-dtype",
        "float32|float64",
        "floating-point precision (default float64, like nanoBragg)",
        _run_choice("run.dtype", ("float32", "float64")),
    ),
    OwnFlag("-device", "cpu|cuda", "where to compute (default cpu)", _run_choice("run.device", ("cpu", "cuda"))),
    OwnFlag(
        "-kernel",
        "auto|fused|eager",
        "how chunks are evaluated: compiled (fused), plain torch (eager), or fused where it pays (auto)",
        _run_choice("run.kernel", ("auto", "fused", "eager")),
    ),
    OwnFlag("-compile", "", "same as -kernel fused", _constant("run.kernel", "fused")),
    OwnFlag("-threads", "N", "CPU threads (default: the cores available to the process)", _run_threads),
    OwnFlag(
        "-noise_engine",
        "c|torch",
        "noise image: nanoBragg's own generator (c, identical pixels) or a vectorised torch sampler",
        _run_choice("run.noise_engine", ("c", "torch")),
    ),
    OwnFlag("-quiet", "", "print nothing but warnings and errors", _constant("run.quiet", True)),
    OwnFlag("-strict", "", "arguments nanoBragg would ignore are errors", _constant("run.strict", True)),
    OwnFlag("-corrected", "", "corrected physics for every nanoBragg quirk (docs/physics.md)", _nothing),
)
_OWN_BY_NAME = {flag.name: flag for flag in NANOBRAG_FLAGS}
assert not any(rule.matches(name) for rule in RULES for name in _OWN_BY_NAME), "an own flag reaches a C rule"


def flag_help() -> str:
    """One line per flag, for ``nanobrag -h``."""
    lines = [
        "usage: nanobrag [FLAGS]       nanoBragg's flags (see docs/cli.md)",
        "       nanobrag COMMAND ...   nanobrag's own commands: probe-gradients, refine, version (COMMAND --help)",
        "",
        "nanoBragg's flags (read as nanoBragg reads them: any argument containing the name works):",
    ]
    for rule in RULES:
        aliases = [s.text for s in rule.spellings[1:]]
        also = f" (also {', '.join(aliases)})" if aliases else ""
        lines.append(f"  {rule.name} {rule.metavar}".ljust(30) + f" {rule.help}{also}")
    lines += ["", "nanobrag's own flags:"]
    for own in NANOBRAG_FLAGS:
        lines.append(f"  {own.name} {own.metavar}".ljust(30) + f" {own.help}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Parsing


@dataclass
class _Pass:
    """Bookkeeping of one pass over argv: which arguments were read as values, what was said."""

    consumed: set[int] = field(default_factory=set)
    ignored: list[int] = field(default_factory=list)  # arguments starting with '-' that no rule read
    warnings: list[tuple[int, str]] = field(default_factory=list)  # (position in argv, message)
    notes: list[str] = field(default_factory=list)


def parse_flags(argv: Sequence[str]) -> tuple[SimulationConfig, OutputConfig, RunOptions]:
    """Turn nanoBragg's command-line arguments into configuration; bad input raises InputError.

    Arguments that nanoBragg ignores are listed in ``RunOptions.warnings`` (with ``-strict`` they
    raise InputError instead); values that an argument also feeds to another option, as nanoBragg's
    substring matching does, are described in ``RunOptions.notes``.
    """
    argv = list(argv)
    draft = _Draft(corrected="-corrected" in argv)
    _preread_headers(draft, argv)
    state = _Pass()
    for position, token in enumerate(argv):
        if not token.startswith("-"):
            continue
        following = argv[position + 1 :]
        own = _OWN_BY_NAME.get(token)
        if own is not None:
            if len(following) < own.takes:
                raise InputError(f"{token}: expected a value ({own.metavar})")
            own.apply(draft, token, following[: own.takes], Values(token))
            state.consumed.update(range(position + 1, position + 1 + own.takes))
        elif not _replay_c_rules(draft, token, position, following, state):
            state.ignored.append(position)
    _collect_ignored(argv, state)
    warnings = [message for _, message in sorted(state.warnings)]
    if "-strict" in argv and warnings:
        raise InputError(f"{warnings[0]} (-strict)")
    return _finish(draft, warnings, state.notes)


def _replay_c_rules(draft: _Draft, token: str, position: int, following: list[str], state: _Pass) -> bool:
    """Apply every rule of nanoBragg's loop that ``token`` reaches; False if none does."""
    matched = [rule for rule in RULES if rule.matches(token)]
    if not matched:
        return False
    # The options the argument names are read strictly; one reached only through a substring of a
    # longer name (when another rule names the argument exactly) is read the way C reads it.
    named = [rule for rule in matched if rule.names_exactly(token)]
    acted = False
    for rule in matched:
        strict = not named or rule in named
        if len(following) < rule.needs:
            if strict and rule.value_count(following) > 0:
                count = rule.needs
                raise InputError(
                    f"{token}: expected {count} value{'s' if count > 1 else ''} ({rule.metavar}), got {len(following)}"
                )
            continue  # C's argc test fails: nanoBragg skips this rule
        if rule.when is not None and not rule.when(following):
            continue
        count = rule.value_count(following)
        args = following[:count]
        draft.reading_as = None if strict else rule.name
        try:
            rule.apply(draft, token, args, Values(token, strict))
        finally:
            draft.reading_as = None
        state.consumed.update(range(position + 1, position + 1 + count))
        acted = True
        if not strict and count:
            state.notes.append(
                f"{token}: nanoBragg also reads this as {rule.name} {' '.join(args)} (option names match by"
                " substring); so does nanobrag"
            )
        if rule.stops:
            break
    if not acted:
        state.warnings.append(
            (position, f"{token}: nanoBragg acts on it only when another argument follows; ignored, as nanoBragg does")
        )
    return True


def _collect_ignored(argv: list[str], state: _Pass) -> None:
    """One warning per ignored flag (naming the stray values after it), and one per other stray value."""
    stray = {i for i, token in enumerate(argv) if not token.startswith("-") and i not in state.consumed}
    reported: set[int] = set()
    for i in state.ignored:
        if i in state.consumed:  # a negative number read as a value
            continue
        values = []
        j = i + 1
        while j in stray:
            values.append(argv[j])
            reported.add(j)
            j += 1
        close = difflib.get_close_matches(argv[i], _KNOWN_NAMES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        tail = f"; so is {' '.join(values)} after it" if values else ""
        state.warnings.append((i, f"{argv[i]}: not a nanoBragg option; ignored, as nanoBragg does{tail}{hint}"))
    for i in sorted(stray - reported):
        state.warnings.append((i, f"{argv[i]!r}: not a value of any option; ignored, as nanoBragg does"))


_KNOWN_NAMES = sorted({s.text for rule in RULES for s in rule.spellings} | set(_OWN_BY_NAME))


def _finish(draft: _Draft, warnings: list[str], notes: list[str]) -> tuple[SimulationConfig, OutputConfig, RunOptions]:
    crystal = draft.sections["crystal"]
    if draft.cell_parts is not None:  # CrystalConfig fills in nanoBragg's defaults for what is not positive
        crystal["cell"] = tuple(draft.cell_parts)
    if "cell" not in crystal and "mosflm_matrix" not in crystal:
        raise InputError("no crystal: give -cell a b c [alpha beta gamma] or -mat FILE")
    structure = draft.sections["structure"]
    dump = structure.setdefault("dump_path", Path("Fdump.bin"))  # nanoBragg's cache in the working directory
    if "hkl_path" not in structure and not structure.get("default_F") and not dump.is_file():
        raise InputError(f"no structure factors: give -hkl FILE or a non-zero -default_F (no {dump} to read)")
    _header_distance(draft)
    pix0_flag = draft.set_by.get(("detector", "pix0_vector_m"))
    if pix0_flag is not None and draft.quirks.pix0_vector_ignored:
        notes = [
            *notes,
            f"{pix0_flag}: nanoBragg selects the CUSTOM convention and then ignores the vector; so does"
            " nanobrag (-corrected places the detector with it)",
        ]

    output = draft.sections["output"]
    output.setdefault("floatfile", Path("floatimage.bin"))
    output.setdefault("intfile", Path("intimage.img"))
    output["pgmfile"] = output.get("pgmfile", Path("image.pgm")) if draft.write_pgm else None
    output["noisefile"] = output.get("noisefile", Path("noiseimage.img")) if draft.write_noise else None

    sections = {name: draft.sections[name] for name in ("crystal", "structure", "detector", "beam")}
    try:
        simulation = SimulationConfig.model_validate(sections | {"corrected": draft.corrected})
        outputs = OutputConfig.model_validate(output)
    except ValidationError as err:
        raise InputError(_validation_message(err, draft)) from None
    options = RunOptions(
        **draft.sections["run"],
        headers_read=tuple(draft.headers_read),
        warnings=tuple(warnings),
        notes=tuple(notes),
    )
    return simulation, outputs, options


def _header_distance(draft: _Draft) -> None:
    """A header's CLOSE_DISTANCE fixes the detector in nanoBragg even after -distance; corrected, -distance wins."""
    if draft.quirks.header_close_distance_overrides_distance:
        return
    close_by = draft.set_by.get(("detector", "close_distance_mm"))
    distance_by = draft.set_by.get(("detector", "distance_mm"))
    if close_by in draft.header_sources and distance_by is not None and distance_by not in draft.header_sources:
        del draft.sections["detector"]["close_distance_mm"]


def _validation_message(err: ValidationError, draft: _Draft) -> str:
    """The first validation problem, attributed to the flag that set the offending field."""
    problem = err.errors()[0]
    location = tuple(str(part) for part in problem["loc"])
    if len(location) == 1:  # OutputConfig errors have no section in their location
        location = ("output",) + location
    setting = (location[0], location[1])
    flag = draft.set_by.get(setting, ".".join(location))
    if setting in draft.read_as:  # a value that reached this setting through C's substring matching
        flag = f"{flag} (read by nanoBragg as {draft.read_as[setting]} too)"
    return f"{flag}: {problem_message(problem)}"
