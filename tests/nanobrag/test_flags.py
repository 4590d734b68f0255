"""nanoBragg's command line -> SimulationConfig, OutputConfig, RunOptions."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from nanobrag.config import BeamConfig, Convention, CrystalShape, DetectorConfig, Pivot
from nanobrag.errors import InputError
from nanobrag.flags import FLAGS, RunOptions, parse_flags

CELL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1"]


def parse(*args: str):
    return parse_flags([*CELL, *args])


def test_defaults_are_nanobraggs():
    sim, out, run = parse()
    assert out.floatfile == Path("floatimage.bin") and out.intfile == Path("intimage.img")
    assert out.pgmfile == Path("image.pgm") and out.noisefile == Path("noiseimage.img")
    assert out.pngfile is None and out.seed is None and out.adc_offset == 40.0
    assert run == RunOptions(dtype="float64", device="cpu", compile=False, quiet=False)
    assert sim.structure.dump_path == Path("Fdump.bin")  # nanoBragg's cache, read or refreshed
    assert sim.detector.convention is Convention.MOSFLM and sim.detector.pivot is None
    assert sim.crystal.N == (1.0, 1.0, 1.0) and sim.crystal.mosaic_seed == 12345678


@pytest.mark.golden
def test_every_golden_command_line_parses(shared_dir, monkeypatch):
    monkeypatch.chdir(shared_dir / "golden")  # input files are named relative to it
    for case in json.loads(Path("cases.json").read_text()):
        sim, _, _ = parse_flags(case["args"])
        assert sim.structure.default_F or sim.structure.hkl_path, case["name"]


def test_cell_takes_one_to_six_numbers_with_nanobraggs_defaults():
    assert parse_flags(["-cell", "50", "-default_F", "1"])[0].crystal.cell == (50, 50, 50, 90, 90, 90)
    assert parse_flags(["-cell", "50", "60", "70", "-N", "2", "-default_F", "1"])[0].crystal.cell == (
        50,
        60,
        70,
        90,
        90,
        90,
    )
    assert parse_flags(["-cell", "50", "0", "70", "80", "0", "100", "-default_F", "1"])[0].crystal.cell == (
        50,
        50,
        70,
        80,
        90,
        100,
    )
    # A later -cell overwrites only the values it gives, as nanoBragg's variables do.
    cell = parse_flags(["-cell", "50", "60", "70", "80", "85", "95", "-cell", "40", "-default_F", "1"])[0].crystal.cell
    assert cell == (40, 60, 70, 80, 85, 95)


def test_cell_errors():
    with pytest.raises(InputError, match=r"^-cell: expected 1 to 6 numbers"):
        parse_flags(["-cell", "-N", "3"])
    with pytest.raises(InputError, match=r"^-cell: expected a number, got 'abc'"):
        parse_flags(["-cell", "abc"])
    with pytest.raises(InputError, match=r"^-cell: cell edge a must be positive"):
        parse_flags(["-cell", "0", "10"])
    with pytest.raises(InputError, match=r"^no crystal: give -cell"):
        parse_flags(["-default_F", "1"])


def test_mat_reads_the_matrix_now(tmp_path):
    (tmp_path / "A.mat").write_text("1 2 3\n4 5 6\n7 8 9\n")
    sim, _, _ = parse_flags(["-mat", str(tmp_path / "A.mat"), "-default_F", "1"])
    assert sim.crystal.mosflm_matrix == ((1, 2, 3), (4, 5, 6), (7, 8, 9))
    with pytest.raises(InputError, match=r"^-mat: cannot read matrix file .*missing\.mat"):
        parse_flags(["-mat", str(tmp_path / "missing.mat")])


def test_structure_factors_are_required_like_nanobragg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        InputError, match=r"^no structure factors: give -hkl FILE or a non-zero -default_F \(no Fdump.bin to read\)"
    ):
        parse_flags(["-cell", "50"])
    with pytest.raises(InputError, match=r"no cache.bin to read"):
        parse_flags(["-cell", "50", "-default_F", "0", "-dump", "cache.bin"])
    (tmp_path / "Fdump.bin").write_bytes(b"")  # a cache from an earlier run is enough
    assert parse_flags(["-cell", "50"])[0].structure.dump_path == Path("Fdump.bin")


def test_misset_angles_or_random_last_wins():
    sim = parse("-misset", "10", "20", "30")[0]
    assert sim.crystal.misset_deg == (10, 20, 30) and not sim.crystal.misset_random
    sim = parse("-misset", "10", "20", "30", "-misset", "random", "-misset_seed", "4")[0]
    assert sim.crystal.misset_random and sim.crystal.misset_deg is None and sim.crystal.misset_seed == 4
    sim = parse("-misset", "random", "-misset", "1", "2", "3")[0]
    assert not sim.crystal.misset_random and sim.crystal.misset_deg == (1, 2, 3)
    with pytest.raises(InputError, match=r"^-misset: expected 3 values \(X Y Z\|random\), got 2"):
        parse("-misset", "1", "2")


def test_crystal_size_flags():
    sim = parse("-N", "5", "-Nb", "7")[0]
    assert sim.crystal.N == (5, 7, 5)
    sim = parse("-Na", "2", "-Nc", "3", "-N", "4")[0]
    assert sim.crystal.N == (4, 4, 4)
    assert parse("-xtalsize", "0.1", "-xtal_y", "0.2")[0].crystal.xtalsize_mm == (0.1, 0.2, 0.1)
    assert parse("-sample_thick", "1", "-width", "2", "-sample_height", "3")[0].crystal.xtalsize_mm == (1, 2, 3)
    assert parse("-samplesize", "4", "-xtal_z", "5")[0].crystal.xtalsize_mm == (4, 4, 5)
    with pytest.raises(InputError, match=r"^-N: expected an integer, got '2.5'"):
        parse("-N", "2.5")


@pytest.mark.parametrize(
    "flag, shape",
    [
        ("-round_xtal", CrystalShape.ROUND),
        ("-gauss_xtal", CrystalShape.GAUSS),
        ("-tophat_spots", CrystalShape.TOPHAT),
        ("-binary_spots", CrystalShape.TOPHAT),
    ],
)
def test_shape_switches_last_wins(flag, shape):
    assert parse(flag)[0].crystal.shape is shape
    assert parse(flag, "-square_xtal")[0].crystal.shape is CrystalShape.SQUARE


def test_mosaic_and_spindle_flags():
    sim = parse("-mosaicity", "0.5", "-mosaic_domains", "9", "-mosaic_seed", "42", "-fudge", "2")[0]
    assert (sim.crystal.mosaic_spread_deg, sim.crystal.mosaic_domains, sim.crystal.mosaic_seed, sim.crystal.fudge) == (
        0.5,
        9,
        42,
        2,
    )
    assert parse("-mosaic", "1", "-mosaic_spread", "2")[0].crystal.mosaic_spread_deg == 2
    assert parse("-mosaic_dom", "3")[0].crystal.mosaic_domains == 3
    sim = parse("-phi", "10", "-osc", "2", "-phistep", "0.5", "-phisteps", "4")[0]
    assert (sim.crystal.phi0_deg, sim.crystal.osc_deg, sim.crystal.phistep_deg, sim.crystal.phisteps) == (10, 2, 0.5, 4)
    # counts are kept as typed: nanoBragg's rules for 0 and negative values belong to setup
    assert parse("-phisteps", "0")[0].crystal.phisteps == 0


def test_structure_flags(tmp_path):
    (tmp_path / "a.hkl").write_text("0 0 0 1\n")
    sim = parse("-hkl", str(tmp_path / "a.hkl"), "-dump", str(tmp_path / "F.bin"), "-interpolate")[0]
    assert sim.structure.hkl_path == tmp_path / "a.hkl" and sim.structure.dump_path == tmp_path / "F.bin"
    assert sim.structure.interpolate is True
    assert parse("-interpolate", "-nointerpolate")[0].structure.interpolate is False
    assert parse()[0].structure.interpolate is None
    with pytest.raises(InputError, match=r"^-hkl: cannot read .*nope\.hkl: No such file"):
        parse("-hkl", str(tmp_path / "nope.hkl"))


def test_beam_flags(tmp_path):
    sim = parse(
        "-lambda", "1.5", "-dispersion", "2", "-dispstep", "0.5", "-dispsteps", "5", "-dmin", "3", "-water", "10"
    )[0]
    b = sim.beam
    assert (b.wavelength_A, b.dispersion_pct, b.dispstep_pct, b.dispsteps, b.dmin_A, b.water_um) == (
        1.5,
        2,
        0.5,
        5,
        3,
        10,
    )
    assert parse("-wave", "2")[0].beam.wavelength_A == 2 == parse("-wavelength", "2")[0].beam.wavelength_A
    assert parse("-energy", "12398.42")[0].beam.wavelength_A == pytest.approx(1.0)
    assert parse("-energy", "6199.21", "-lambda", "3")[0].beam.wavelength_A == 3  # last wins across aliases
    b = parse(
        "-divergence",
        "2",
        "-vdivrange",
        "3",
        "-hdivstep",
        "0.5",
        "-vdivstep",
        "0.25",
        "-divsteps",
        "3",
        "-hdivsteps",
        "4",
    )[0].beam
    assert (b.hdivrange_mrad, b.vdivrange_mrad, b.hdivstep_mrad, b.vdivstep_mrad, b.hdivsteps, b.vdivsteps) == (
        2,
        3,
        0.5,
        0.25,
        4,
        3,
    )
    assert parse("-hdivrange", "1", "-vdivsteps", "2")[0].beam.hdivrange_mrad == 1
    assert parse("-square_div")[0].beam.round_div is False and parse("-square_div", "-round_div")[0].beam.round_div
    b = parse("-fluence", "1e20", "-flux", "1e12", "-exposure", "0.5", "-beamsize", "0.05")[0].beam
    assert (b.fluence, b.flux, b.exposure_s, b.beamsize_mm) == (1e20, 1e12, 0.5, 0.05)
    b = parse("-polar", "0.9")[0].beam
    assert b.polarization == 0.9 and not b.nopolar
    assert parse("-polar", "0.9", "-nopolar")[0].beam.nopolar and not parse("-nopolar", "-polar", "1")[0].beam.nopolar
    (tmp_path / "s.txt").write_text("-10 0 0 1 1e-10\n")
    assert parse("-sourcefile", str(tmp_path / "s.txt"))[0].beam.sourcefile == tmp_path / "s.txt"
    with pytest.raises(InputError, match=r"^-sourcefile: cannot read"):
        parse("-sourcefile", str(tmp_path / "none.txt"))
    with pytest.raises(InputError, match=r"^-energy: photon energy must be positive"):
        parse("-energy", "0")


def test_detector_geometry_flags():
    d = parse("-detpixels", "256", "-detpixels_x", "300", "-pixel", "0.2", "-detsize", "80", "-detsize_s", "60")[
        0
    ].detector
    assert (d.fpixels, d.spixels, d.pixel_mm, d.detsize_f_mm, d.detsize_s_mm) == (300, 256, 0.2, 80, 60)
    d = parse("-detpixels_f", "10", "-detpixels_s", "20", "-detpixels_y", "30", "-detsize_f", "5")[0].detector
    assert (d.fpixels, d.spixels, d.detsize_f_mm) == (10, 30, 5)
    assert parse("-detpixels", "0")[0].detector.fpixels is None  # 0 means "derive from -detsize"
    d = parse("-detector_rotx", "5", "-detector_roty", "3", "-detector_rotz", "2", "-curved_det", "-point_pixel")[
        0
    ].detector
    assert (d.rotx_deg, d.roty_deg, d.rotz_deg, d.curved, d.point_pixel) == (5, 3, 2, True, True)
    d = parse(
        "-roi", "1", "10", "2", "20", "-oversample", "3", "-oversample_thick", "-oversample_polar", "-oversample_omega"
    )[0].detector
    assert (
        d.roi == (1, 10, 2, 20)
        and d.oversample == 3
        and d.oversample_thick
        and d.oversample_polar
        and d.oversample_omega
    )
    with pytest.raises(InputError, match=r"^-detpixels: pixel count must not be negative"):
        parse("-detpixels", "-5")
    with pytest.raises(InputError, match=r"^-roi: expected 4 values"):
        parse("-roi", "1", "2")


def test_absorption_flags():
    d = parse("-detector_abs", "320", "-detector_thick", "450", "-detector_thicksteps", "4")[0].detector
    assert (d.absorption_depth_um, d.thick_um, d.thicksteps) == (320, 450, 4)
    for off in ("inf", "0", "infinity"):
        d = parse("-detector_thick", "450", "-detector_absorb", off)[0].detector
        assert d.absorption_depth_um == math.inf and d.thick_um == 0.0  # nanoBragg zeroes the thickness too
    assert parse("-detector_absorption", "inf", "-detector_thick", "100")[0].detector.thick_um == 100
    assert parse("-thicksteps", "3")[0].detector.thicksteps == 3
    with pytest.raises(InputError, match=r"^-detector_abs: attenuation depth must be positive, 0 or inf"):
        parse("-detector_abs", "-3")


@pytest.mark.parametrize(
    "args, pivot",
    [
        (["-distance", "60", "-distance", "100"], Pivot.BEAM),
        (["-Xbeam", "40"], Pivot.BEAM),
        (["-Ybeam", "60"], Pivot.BEAM),
        (["-Xclose", "40"], Pivot.SAMPLE),
        (["-Yclose", "40"], Pivot.SAMPLE),
        (["-ORGX", "100"], Pivot.SAMPLE),
        (["-ORGY", "100"], Pivot.SAMPLE),
        (["-close_distance", "90"], Pivot.SAMPLE),
        (["-twotheta", "15"], Pivot.SAMPLE),
        (["-twotheta", "15", "-distance", "100"], Pivot.BEAM),
        (["-distance", "100", "-pivot", "sample"], Pivot.SAMPLE),
        (["-pivot", "sample", "-Xbeam", "5"], Pivot.BEAM),
        (["-xds"], Pivot.SAMPLE),
        (["-dials"], Pivot.SAMPLE),
        (["-xds", "-mosflm"], Pivot.BEAM),
        (["-adxv"], Pivot.BEAM),
        (["-denzo"], Pivot.BEAM),
    ],
)
def test_pivot_side_effects_last_wins(args, pivot):
    assert parse(*args)[0].detector.pivot is pivot


def test_beam_and_close_positions():
    d = parse(
        "-Xbeam",
        "40",
        "-Ybeam",
        "60",
        "-Xclose",
        "41",
        "-Yclose",
        "61",
        "-ORGX",
        "100",
        "-ORGY",
        "140",
        "-close_distance",
        "90",
    )[0].detector
    assert (d.Xbeam_mm, d.Ybeam_mm, d.Xclose_mm, d.Yclose_mm, d.ORGX, d.ORGY, d.close_distance_mm) == (
        40,
        60,
        41,
        61,
        100,
        140,
        90,
    )
    with pytest.raises(InputError, match=r"^-pivot: expected one of beam, sample, got 'middle'"):
        parse("-pivot", "middle")


@pytest.mark.parametrize(
    "flag, section, field",
    [
        ("-fdet_vector", "detector", "fdet_vector"),
        ("-sdet_vector", "detector", "sdet_vector"),
        ("-odet_vector", "detector", "odet_vector"),
        ("-beam_vector", "detector", "beam_vector"),
        ("-polar_vector", "detector", "polar_vector"),
        ("-twotheta_axis", "detector", "twotheta_axis"),
        ("-pix0_vector", "detector", "pix0_vector_m"),
        ("-spindle_axis", "crystal", "spindle_axis"),
    ],
)
def test_vectors_switch_to_custom_convention(flag, section, field):
    sim = parse("-xds", flag, "0", "0.5", "1")[0]
    assert getattr(getattr(sim, section), field) == (0, 0.5, 1)
    assert sim.detector.convention is Convention.CUSTOM
    assert sim.detector.pivot is Pivot.SAMPLE  # kept from -xds, as nanoBragg's variable is
    assert parse(flag, "0", "0", "1", "-denzo")[0].detector.convention is Convention.DENZO


def test_output_flags_and_default_files():
    _, out, _ = parse(
        "-floatimage", "f.bin", "-intimage", "i.img", "-pgmimage", "p.pgm", "-noiseimage", "n.img", "-pngfile", "p.png"
    )
    assert (out.floatfile, out.intfile, out.pgmfile, out.noisefile, out.pngfile) == tuple(
        map(Path, ("f.bin", "i.img", "p.pgm", "n.img", "p.png"))
    )
    _, out, _ = parse("-floatfile", "a", "-intfile", "b", "-pgmfile", "c", "-noisefile", "d")
    assert (out.floatfile, out.intfile, out.pgmfile, out.noisefile) == tuple(map(Path, "abcd"))
    _, out, _ = parse("-nopgm", "-nonoise")
    assert out.pgmfile is None and out.noisefile is None
    _, out, _ = parse("-nopgm", "-pgmscale", "2", "-nonoise", "-noisefile", "x.img")  # naming a file turns it back on
    assert out.pgmfile == Path("image.pgm") and out.pgm_scale == 2 and out.noisefile == Path("x.img")
    _, out, _ = parse("-noisefile", "x.img", "-nonoise", "-pgmfile", "y.pgm", "-nopgm")
    assert out.noisefile is None and out.pgmfile is None
    _, out, _ = parse("-scale", "2.5", "-adc", "10", "-seed", "7")
    assert (out.intfile_scale, out.adc_offset, out.seed) == (2.5, 10, 7)


def test_nanobrag_additions_and_no_op_flags():
    _, _, run = parse("-dtype", "float32", "-device", "cuda", "-compile", "-quiet")
    assert run == RunOptions(dtype="float32", device="cuda", compile=True, quiet=True)
    plain = parse()
    assert (
        parse("-noprogress", "-progress", "-printout", "-printout_pixel", "3", "4", "-density", "1.2", "-MW", "18")
        == plain
    )
    with pytest.raises(InputError, match=r"^-dtype: expected one of float32, float64, got 'half'"):
        parse("-dtype", "half")
    with pytest.raises(InputError, match=r"^-printout_pixel: expected an integer"):
        parse("-printout_pixel", "3", "x")


@pytest.mark.parametrize(
    "args",
    [
        ["-img", "a.img"],
        ["-mask", "m.img"],
        ["-stol", "s.txt"],
        ["-4stol", "s"],
        ["-Q", "q"],
        ["-stolout", "o"],
        ["-coherent"],
    ],
)
def test_unsupported_physics_is_refused(args):
    with pytest.raises(InputError, match=rf"^{args[0]}: .* is not supported by nanobrag"):
        parse(*args)


@pytest.mark.parametrize(
    "args, message",
    [
        (["-distanse", "100"], r"^unknown flag -distanse \(did you mean -distance\?\)"),
        (["-hdiv", "1"], r"^unknown flag -hdiv"),
        (["100"], r"^unexpected argument '100'"),
        (["-distance"], r"^-distance: expected 1 value \(MM\), got 0"),
        (["-distance", "far"], r"^-distance: expected a number, got 'far'"),
        (["-distance", "-pixel"], r"^-distance: expected a number, got '-pixel'"),
        (["-lambda", "nan"], r"^-lambda: expected a number, got 'nan'"),
        (["-pixel", "NaN"], r"^-pixel: expected a number, got 'NaN'"),
        (["-seed", "99999999999"], r"^-seed: 99999999999 is out of range"),
        (["-fdet_vector", "1", "0"], r"^-fdet_vector: expected 3 values"),
        (["-pixel", "0"], r"^-pixel: pixel size must be positive"),
        (["-lambda", "-1"], r"^-lambda: wavelength must be positive"),
        (["-wave", "0"], r"^-wave: wavelength must be positive"),
        (["-Na", "x"], r"^-Na: expected an integer"),
    ],
)
def test_bad_command_lines_name_the_flag(args, message):
    with pytest.raises(InputError, match=message):
        parse(*args)


def test_flag_names_are_unique_and_dash_prefixed():
    names = [name for flag in FLAGS for name in flag.names]
    assert len(names) == len(set(names)) and all(name.startswith("-") for name in names)


def test_docs_list_every_flag():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    missing = [name for flag in FLAGS for name in flag.names if not re.search(rf"`{re.escape(name)}[ `]", docs)]
    assert not missing, f"docs/cli.md does not mention {missing}"


def test_config_refuses_nan_wavelength_and_pixel():
    with pytest.raises(ValidationError, match="wavelength must be positive"):
        BeamConfig(wavelength_A=float("nan"))
    with pytest.raises(ValidationError, match="pixel size must be positive"):
        DetectorConfig(pixel_mm=float("nan"))
