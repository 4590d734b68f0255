"""nanoBragg's command line -> SimulationConfig, OutputConfig, RunOptions."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from nanobrag.config import BeamConfig, Convention, CrystalShape, DetectorConfig, Pivot
from nanobrag.errors import InputError
from nanobrag.flags import NANOBRAG_FLAGS, RULES, RunOptions, parse_flags

CELL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1"]


def parse(*args: str):
    return parse_flags([*CELL, *args])


def test_defaults_are_nanobraggs():
    sim, out, run = parse()
    assert out.floatfile == Path("floatimage.bin") and out.intfile == Path("intimage.img")
    assert out.pgmfile == Path("image.pgm") and out.noisefile == Path("noiseimage.img")
    assert out.pngfile is None and out.seed is None and out.adc_offset == 40.0
    assert run == RunOptions()  # float64 on the CPU, printouts on, progress on, nothing ignored
    assert sim.corrected is False
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
        parse_flags(["-cell", "0", "10", "-default_F", "1"])
    with pytest.raises(InputError, match=r"^no crystal: give -cell"):
        parse_flags(["-default_F", "1"])


def test_mat_reads_the_matrix_now(tmp_path):
    (tmp_path / "A.mat").write_text("1 2 3\n4 5 6\n7 8 10\n")
    sim, _, _ = parse_flags(["-mat", str(tmp_path / "A.mat"), "-default_F", "1"])
    assert sim.crystal.mosflm_matrix == ((1, 2, 3), (4, 5, 6), (7, 8, 10))
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
    with pytest.raises(InputError, match=r"^-misset: expected 3 values \(X Y Z\), got 2"):
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
    sim = parse("-lambda", "1.5", "-dispersion", "2", "-dispsteps", "5", "-dmin", "3", "-water", "10")[0]
    b = sim.beam
    assert (b.wavelength_A, b.dispersion_pct, b.dispsteps, b.dmin_A, b.water_um) == (1.5, 2, 5, 3, 10)
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
        (["-dials"], Pivot.BEAM),  # as nanoBragg records it; the DIALS convention then imposes SAMPLE
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


def test_nanobrag_additions_and_display_flags():
    _, out, run = parse("-dtype", "float32", "-device", "cuda", "-compile", "-quiet", "-cbffile", "x.cbf")
    assert (run.dtype, run.device, run.kernel, run.quiet, out.cbffile) == (
        "float32",
        "cuda",
        "fused",
        True,
        Path("x.cbf"),
    )
    _, _, run = parse("-kernel", "eager", "-threads", "3", "-noise_engine", "torch")
    assert (run.kernel, run.threads, run.noise_engine) == ("eager", 3, "torch")
    with pytest.raises(InputError, match=r"^-threads: expected a positive number of threads"):
        parse("-threads", "0")
    _, _, run = parse("-noprogress", "-printout_pixel", "3", "4")
    assert not run.progress and run.printout and run.printout_pixel == (3, 4)  # -printout_pixel reaches -printout
    assert parse("-noprogress", "-progress")[2].progress
    plain = parse()[0]
    assert (
        parse("-density", "1.2", "-MW", "18", "-molecular_weight", "20", "-coherent", "-stolout", "s.out")[0] == plain
    )
    with pytest.raises(InputError, match=r"^-dtype: expected one of float32, float64, got 'half'"):
        parse("-dtype", "half")
    with pytest.raises(InputError, match=r"^-printout_pixel: expected an integer"):
        parse("-printout_pixel", "3", "x")


@pytest.mark.parametrize(
    "args, message",
    [
        (["-distance"], r"^-distance: expected 1 value \(MM\), got 0"),
        (["-distance", "far"], r"^-distance: expected a number, got 'far'"),
        (["-distance", "-pixel"], r"^-distance: expected a number, got '-pixel'"),
        (["-lambda", "nan"], r"^-lambda: expected a number, got 'nan'"),
        (["-pixel", "NaN"], r"^-pixel: expected a number, got 'NaN'"),
        (["-seed", "99999999999"], r"^-seed: 99999999999 is out of range"),
        (["-fdet_vector", "1", "0"], r"^-fdet_vector: expected 3 values"),
        (["-pixel", "0"], r"^-pixel: must be positive, got 0$"),
        (["-lambda", "-1"], r"^-lambda: must be positive, got -1$"),
        (["-wave", "0"], r"^-wave: must be positive, got 0$"),
        (["-wavelength", "short"], r"^-wavelength: expected a number, got 'short'"),
        (["-Na", "x"], r"^-Na: expected an integer"),
        (["-pix0_vector_mm", "1", "0", "x"], r"^-pix0_vector_mm: expected a number, got 'x'"),
        (["-dtype"], r"^-dtype: expected a value"),
    ],
)
def test_bad_values_of_real_options_are_errors(args, message):
    with pytest.raises(InputError, match=message):
        parse(*args)


@pytest.mark.parametrize(
    "args, warning",
    [
        (["-hdiv", "0.1"], "-hdiv: not a nanoBragg option; ignored, as nanoBragg does; so is 0.1 after it"),
        (["-convention", "XDS"], "-convention: not a nanoBragg option; ignored, as nanoBragg does; so is XDS after it"),
        (["-dispstep", "3"], "-dispstep: not a nanoBragg option; ignored, as nanoBragg does; so is 3 after it"),
        (["-distanse", "100"], "-distanse: not a nanoBragg option; ignored, as nanoBragg does; so is 100 after it"),
        (["-detector_twotheta", "8"], "-detector_twotheta: not a nanoBragg option; ignored, as nanoBragg does"),
        (["-nopgm", "100"], "'100': not a value of any option; ignored, as nanoBragg does"),
        (["-curved_det"], "-curved_det: nanoBragg acts on it only when another argument follows; ignored"),
    ],
)
def test_arguments_nanobragg_ignores_warn_and_strict_refuses_them(args, warning):
    sim, _, run = parse(*args)
    assert len(run.warnings) == 1 and run.warnings[0].startswith(warning)
    assert sim == parse()[0] and not sim.detector.curved
    with pytest.raises(InputError, match=re.escape(warning)):
        parse("-strict", *args)


def test_ignored_flag_warning_suggests_the_option():
    assert parse("-distanse", "100")[2].warnings[0].endswith("(did you mean -distance?)")
    assert parse("-hdiv", "1")[2].warnings[0].endswith("(did you mean -hdivstep?)")


def test_negative_numbers_read_as_values_are_not_ignored_flags():
    sim, _, run = parse("-pix0_vector", "-0.1", "-0.05", "0.2", "-Xbeam", "-5")
    assert run.warnings == () and sim.detector.Xbeam_mm == -5


def test_tokens_that_set_two_options_as_nanobragg_does():
    # -twotheta_axis also matches -twotheta: its first value becomes the two-theta angle (and pivot SAMPLE).
    sim, _, run = parse("-twotheta", "20", "-twotheta_axis", "0", "0", "-1")
    d = sim.detector
    assert d.twotheta_axis == (0, 0, -1) and d.twotheta_deg == 0 and d.pivot is Pivot.SAMPLE
    assert run.notes == ("-twotheta_axis: nanoBragg also reads this as -twotheta 0 (option names match by substring);"
                         " so does nanobrag",)  # fmt: skip
    # -misset_seed also matches -misset: with three arguments after it, they become misset angles (atof).
    sim, _, run = parse("-misset", "random", "-misset_seed", "3", "-default_F", "50")
    c = sim.crystal
    assert c.misset_seed == 3 and not c.misset_random and c.misset_deg == (3, 0, 50)
    assert sim.structure.default_F == 50  # "-default_F" is read as a value and still as a flag
    # too few arguments for the second option: C's argc test fails and only the seed is set
    sim, _, _ = parse("-misset", "random", "-misset_seed", "3")
    assert sim.crystal.misset_random and sim.crystal.misset_seed == 3


def test_substring_spellings_reach_the_option():
    sim, _, _ = parse("-wavelength", "1.5", "-mosaic_spread", "0.2", "-mosaic_domains", "4", "-detpixels_x", "20")
    assert (sim.beam.wavelength_A, sim.crystal.mosaic_spread_deg, sim.crystal.mosaic_domains) == (1.5, 0.2, 4)
    assert sim.detector.fpixels == 20
    d = parse("-pix0_vector_mm", "-6", "5", "100")[0].detector
    assert d.pix0_vector_m == (-6, 5, 100) and d.convention is Convention.CUSTOM
    assert parse("-xtal_height", "0.1")[0].crystal.xtalsize_mm == (None, None, 0.1)
    assert parse("-detector_thick", "100", "-detector_thicksteps", "3")[0].detector.thicksteps == 3
    # length checks keep -phisteps, -hdivsteps and -detsize_f away from -phistep, -hdivstep and -detsize
    sim = parse("-phisteps", "4", "-hdivsteps", "3", "-detsize_f", "20")[0]
    assert sim.crystal.phistep_deg is None and sim.beam.hdivstep_mrad is None and sim.detector.detsize_s_mm == 102.4


def test_matrix_spelling_reads_the_matrix(tmp_path):
    (tmp_path / "A.mat").write_text("1 2 3\n4 5 6\n7 8 10\n")
    _, _, run = parse_flags(["-matrix", str(tmp_path / "A.mat"), "-default_F", "1"])
    assert run.matrix_file == tmp_path / "A.mat" and run.warnings == ()


def test_amorphous_table_is_read_and_checked(tmp_path):
    (tmp_path / "s.txt").write_text("0.0 2.5\n0.1 2.6\n")
    for flag in ("-stol", "-4stol", "-Q"):
        sim, _, run = parse(flag, str(tmp_path / "s.txt"))
        assert run.amorphous_table == tmp_path / "s.txt" and sim == parse()[0]
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(InputError, match="no data in S\\(Q\\) table"):
        parse("-stol", str(tmp_path / "empty.txt"))


def test_corrected_switch():
    assert parse("-corrected")[0].corrected and not parse()[0].corrected


# Every row of nanoBragg's argument loop, by each spelling: the arguments and the effect they must have.
ROW_EFFECTS = {
    "-Na": (["-Na", "3"], "crystal.N", (3, 1, 1)),
    "-Nb": (["-Nb", "3"], "crystal.N", (1, 3, 1)),
    "-Nc": (["-Nc", "3"], "crystal.N", (1, 1, 3)),
    "-N": (["-N", "3"], "crystal.N", (3, 3, 3)),
    "-cell": (["-cell", "40", "50"], "crystal.cell", (40, 50, 100, 90, 90, 90)),  # overwrites what it gives
    "-misset": (["-misset", "1", "2", "3"], "crystal.misset_deg", (1, 2, 3)),
    "-samplesize": (["-samplesize", "1"], "crystal.xtalsize_mm", (1, 1, 1)),
    "-sample_size": (["-sample_size", "1"], "crystal.xtalsize_mm", (1, 1, 1)),
    "-sample_thick": (["-sample_thick", "1"], "crystal.xtalsize_mm", (1, None, None)),
    "-sample_x": (["-sample_x", "1"], "crystal.xtalsize_mm", (1, None, None)),
    "-sample_width": (["-sample_width", "1"], "crystal.xtalsize_mm", (None, 1, None)),
    "-sample_y": (["-sample_y", "1"], "crystal.xtalsize_mm", (None, 1, None)),
    "-width": (["-width", "1"], "crystal.xtalsize_mm", (None, 1, None)),
    "-sample_heigh": (["-sample_height", "1"], "crystal.xtalsize_mm", (None, None, 1)),
    "-sample_z": (["-sample_z", "1"], "crystal.xtalsize_mm", (None, None, 1)),
    "-heigh": (["-height", "1"], "crystal.xtalsize_mm", (None, None, 1)),
    "-xtalsize": (["-xtalsize", "1"], "crystal.xtalsize_mm", (1, 1, 1)),
    "-xtal_size": (["-xtal_size", "1"], "crystal.xtalsize_mm", (1, 1, 1)),
    "-xtal_thick": (["-xtal_thick", "1"], "crystal.xtalsize_mm", (1, None, None)),
    "-xtal_x": (["-xtal_x", "1"], "crystal.xtalsize_mm", (1, None, None)),
    "-xtal_width": (["-xtal_width", "1"], "crystal.xtalsize_mm", (None, 1, None)),
    "-xtal_y": (["-xtal_y", "1"], "crystal.xtalsize_mm", (None, 1, None)),
    "-xtal_heigh": (["-xtal_height", "1"], "crystal.xtalsize_mm", (None, None, 1)),
    "-xtal_z": (["-xtal_z", "1"], "crystal.xtalsize_mm", (None, None, 1)),
    "-density": (["-density", "1.2"], "crystal.N", (1, 1, 1)),
    "-sample_den": (["-sample_density", "1.2"], "crystal.N", (1, 1, 1)),
    "-MW": (["-MW", "18"], "crystal.N", (1, 1, 1)),
    "-molec": (["-molecular_weight", "18"], "crystal.N", (1, 1, 1)),
    "-Xbeam": (["-Xbeam", "40"], "detector.Xbeam_mm", 40),
    "-Ybeam": (["-Ybeam", "40"], "detector.Ybeam_mm", 40),
    "-Xclose": (["-Xclose", "40"], "detector.Xclose_mm", 40),
    "-Yclose": (["-Yclose", "40"], "detector.Yclose_mm", 40),
    "-ORGX": (["-ORGX", "40"], "detector.ORGX", 40),
    "-ORGY": (["-ORGY", "40"], "detector.ORGY", 40),
    "-pivot": (["-pivot", "sample"], "detector.pivot", Pivot.SAMPLE),
    "-mosflm": (["-xds", "-mosflm"], "detector.convention", Convention.MOSFLM),
    "-xds": (["-xds"], "detector.convention", Convention.XDS),
    "-adxv": (["-adxv"], "detector.convention", Convention.ADXV),
    "-denzo": (["-denzo"], "detector.convention", Convention.DENZO),
    "-dials": (["-dials"], "detector.convention", Convention.DIALS),
    "-fdet_vector": (["-fdet_vector", "0", "0", "1"], "detector.fdet_vector", (0, 0, 1)),
    "-sdet_vector": (["-sdet_vector", "0", "0", "1"], "detector.sdet_vector", (0, 0, 1)),
    "-odet_vector": (["-odet_vector", "0", "0", "1"], "detector.odet_vector", (0, 0, 1)),
    "-beam_vector": (["-beam_vector", "0", "0", "1"], "detector.beam_vector", (0, 0, 1)),
    "-polar_vector": (["-polar_vector", "0", "0", "1"], "detector.polar_vector", (0, 0, 1)),
    "-spindle_axis": (["-spindle_axis", "0", "0", "1"], "crystal.spindle_axis", (0, 0, 1)),
    "-twotheta_axis": (["-twotheta_axis", "0", "0", "1"], "detector.twotheta_axis", (0, 0, 1)),
    "-pix0_vector": (["-pix0_vector", "0", "0", "1"], "detector.pix0_vector_m", (0, 0, 1)),
    "-distance": (["-distance", "90"], "detector.distance_mm", 90),
    "-close_distance": (["-close_distance", "90"], "detector.close_distance_mm", 90),
    "-detector_abs": (["-detector_absorb", "300"], "detector.absorption_depth_um", 300),
    "-detector_thick": (["-detector_thick", "300"], "detector.thick_um", 300),
    "-detector_thicksteps": (["-detector_thicksteps", "3"], "detector.thicksteps", 3),
    "-thicksteps": (["-thicksteps", "3"], "detector.thicksteps", 3),
    "-twotheta": (["-twotheta", "5"], "detector.twotheta_deg", 5),
    "-detector_rotx": (["-detector_rotx", "5"], "detector.rotx_deg", 5),
    "-detector_roty": (["-detector_roty", "5"], "detector.roty_deg", 5),
    "-detector_rotz": (["-detector_rotz", "5"], "detector.rotz_deg", 5),
    "-detsize": (["-detsize", "50"], "detector.detsize_s_mm", 50),
    "-detsize_f": (["-detsize_f", "50"], "detector.detsize_f_mm", 50),
    "-detsize_s": (["-detsize_s", "50"], "detector.detsize_s_mm", 50),
    "-detpixels": (["-detpixels", "50"], "detector.spixels", 50),
    "-detpixels_f": (["-detpixels_f", "50"], "detector.fpixels", 50),
    "-detpixels_x": (["-detpixels_x", "50"], "detector.fpixels", 50),
    "-detpixels_s": (["-detpixels_s", "50"], "detector.spixels", 50),
    "-detpixels_y": (["-detpixels_y", "50"], "detector.spixels", 50),
    "-curved_det": (["-curved_det", "-nopgm"], "detector.curved", True),
    "-pixel": (["-pixel", "0.2"], "detector.pixel_mm", 0.2),
    "-point_pixel": (["-point_pixel"], "detector.point_pixel", True),
    "-polar": (["-polar", "0.9"], "beam.polarization", 0.9),
    "-nopolar": (["-nopolar"], "beam.nopolar", True),
    "-oversample_thick": (["-oversample_thick"], "detector.oversample_thick", True),
    "-oversample_polar": (["-oversample_polar"], "detector.oversample_polar", True),
    "-oversample_omega": (["-oversample_omega"], "detector.oversample_omega", True),
    "-oversample": (["-oversample", "3"], "detector.oversample", 3),
    "-roi": (["-roi", "1", "2", "3", "4"], "detector.roi", (1, 2, 3, 4)),
    "-lambda": (["-lambda", "2"], "beam.wavelength_A", 2),
    "-wave": (["-wave", "2"], "beam.wavelength_A", 2),
    "-energy": (["-energy", "12398.42"], "beam.wavelength_A", 1),
    "-fluence": (["-fluence", "1e20"], "beam.fluence", 1e20),
    "-flux": (["-flux", "1e12"], "beam.flux", 1e12),
    "-exposure": (["-exposure", "2"], "beam.exposure_s", 2),
    "-beamsize": (["-beamsize", "0.05"], "beam.beamsize_mm", 0.05),
    "-mosaic": (["-mosaic", "0.5"], "crystal.mosaic_spread_deg", 0.5),
    "-mosaici": (["-mosaicity", "0.5"], "crystal.mosaic_spread_deg", 0.5),
    "-mosaic_spr": (["-mosaic_spread", "0.5"], "crystal.mosaic_spread_deg", 0.5),
    "-mosaic_dom": (["-mosaic_domains", "5"], "crystal.mosaic_domains", 5),
    "-dispersion": (["-dispersion", "1"], "beam.dispersion_pct", 1),
    "-dispsteps": (["-dispsteps", "3"], "beam.dispsteps", 3),
    "-divergence": (["-divergence", "2"], "beam.vdivrange_mrad", 2),
    "-hdivrange": (["-hdivrange", "2"], "beam.hdivrange_mrad", 2),
    "-vdivrange": (["-vdivrange", "2"], "beam.vdivrange_mrad", 2),
    "-hdivstep": (["-hdivstep", "0.5"], "beam.hdivstep_mrad", 0.5),
    "-hdivsteps": (["-hdivsteps", "3"], "beam.hdivsteps", 3),
    "-vdivstep": (["-vdivstep", "0.5"], "beam.vdivstep_mrad", 0.5),
    "-vdivsteps": (["-vdivsteps", "3"], "beam.vdivsteps", 3),
    "-divsteps": (["-divsteps", "3"], "beam.hdivsteps", 3),
    "-round_div": (["-square_div", "-round_div"], "beam.round_div", True),
    "-square_div": (["-square_div"], "beam.round_div", False),
    "-adc": (["-adc", "10"], "output.adc_offset", 10),
    "-phi": (["-phi", "10"], "crystal.phi0_deg", 10),
    "-osc": (["-osc", "1"], "crystal.osc_deg", 1),
    "-phistep": (["-phistep", "0.1"], "crystal.phistep_deg", 0.1),
    "-phisteps": (["-phisteps", "3"], "crystal.phisteps", 3),
    "-dmin": (["-dmin", "2"], "beam.dmin_A", 2),
    "-mat": (["-mat", "{A.mat}"], "run.matrix_file", "{A.mat}"),
    "-hkl": (["-hkl", "{a.hkl}"], "structure.hkl_path", "{a.hkl}"),
    "-default_F": (["-default_F", "7"], "structure.default_F", 7),
    "-dump": (["-dump", "F.bin"], "structure.dump_path", Path("F.bin")),
    "-img": (["-img", "{a.img}"], "detector.fpixels", 6),
    "-stolout": (["-stolout", "o.stol"], "crystal.N", (1, 1, 1)),
    "-stol": (["-stol", "{s.txt}"], "run.amorphous_table", "{s.txt}"),
    "-4stol": (["-4stol", "{s.txt}"], "run.amorphous_table", "{s.txt}"),
    "-Q": (["-Q", "{s.txt}"], "run.amorphous_table", "{s.txt}"),
    "-sourcefile": (["-sourcefile", "{s.txt}"], "beam.sourcefile", "{s.txt}"),
    "-floatfile": (["-floatfile", "f"], "output.floatfile", Path("f")),
    "-floatimage": (["-floatimage", "f"], "output.floatfile", Path("f")),
    "-intfile": (["-intfile", "f"], "output.intfile", Path("f")),
    "-intimage": (["-intimage", "f"], "output.intfile", Path("f")),
    "-pgmfile": (["-nopgm", "-pgmfile", "f"], "output.pgmfile", Path("f")),
    "-pgmimage": (["-pgmimage", "f"], "output.pgmfile", Path("f")),
    "-noisefile": (["-nonoise", "-noisefile", "f"], "output.noisefile", Path("f")),
    "-noiseimage": (["-noiseimage", "f"], "output.noisefile", Path("f")),
    "-nonoise": (["-nonoise"], "output.noisefile", None),
    "-nopgm": (["-nopgm"], "output.pgmfile", None),
    "-scale": (["-scale", "2"], "output.intfile_scale", 2),
    "-pgmscale": (["-pgmscale", "2"], "output.pgm_scale", 2),
    "-coherent": (["-coherent"], "crystal.N", (1, 1, 1)),
    "-printout": (["-printout"], "run.printout", True),
    "-noprogress": (["-noprogress"], "run.progress", False),
    "-progress": (["-noprogress", "-progress"], "run.progress", True),
    "-interpolate": (["-interpolate"], "structure.interpolate", True),
    "-nointerpolate": (["-nointerpolate"], "structure.interpolate", False),
    "-round_xtal": (["-round_xtal"], "crystal.shape", CrystalShape.ROUND),
    "-square_xtal": (["-round_xtal", "-square_xtal"], "crystal.shape", CrystalShape.SQUARE),
    "-gauss_xtal": (["-gauss_xtal"], "crystal.shape", CrystalShape.GAUSS),
    "-binary_spots": (["-binary_spots"], "crystal.shape", CrystalShape.TOPHAT),
    "-tophat_spots": (["-tophat_spots"], "crystal.shape", CrystalShape.TOPHAT),
    "-fudge": (["-fudge", "2"], "crystal.fudge", 2),
    "-printout_pixel": (["-printout_pixel", "1", "2"], "run.printout_pixel", (1, 2)),
    "-seed": (["-seed", "5"], "output.seed", 5),
    "-mosaic_seed": (["-mosaic_seed", "5"], "crystal.mosaic_seed", 5),
    "-misset_seed": (["-misset_seed", "5"], "crystal.misset_seed", 5),
    "-water": (["-water", "5"], "beam.water_um", 5),
    "-mask": (["-mask", "{a.img}"], "detector.mask_path", "{a.img}"),
}


@pytest.fixture
def input_files(tmp_path):
    """Small input files for the rows that read one."""
    from nanobrag.io.smv import SMVHeader, smv_bytes

    (tmp_path / "A.mat").write_text("1 2 3\n4 5 6\n7 8 10\n")
    (tmp_path / "a.hkl").write_text("0 0 0 1\n")
    (tmp_path / "s.txt").write_text("-10 0 0 1 1e-10\n")
    header = SMVHeader(6, 4, 1e-4, 0.1, 1e-10, 3e-4, 2e-4, 3e-4, 2e-4, 4e-4, (0, 0, 0), 3, 2, 0.1, 0, 0, 0)
    (tmp_path / "a.img").write_bytes(smv_bytes(np.ones((4, 6), dtype=np.uint16), header))
    return tmp_path


def _field(parsed, key):
    sim, out, run = parsed
    section, name = key.split(".")
    holder = {"output": out, "run": run}.get(section) or getattr(sim, section)
    return getattr(holder, name)


@pytest.mark.parametrize("row", sorted(ROW_EFFECTS))
def test_every_row_of_nanobraggs_argument_loop(row, input_files):
    args, key, expected = ROW_EFFECTS[row]

    def located(text):  # "{name}" stands for an input file of the fixture
        return str(input_files / text[1:-1]) if text.startswith("{") else text

    args = [located(arg) for arg in args]
    if isinstance(expected, str) and expected.startswith("{"):
        expected = Path(located(expected))
    parsed = parse(*args)
    assert _field(parsed, key) == expected
    assert parsed[2].warnings == ()


def test_the_row_table_covers_every_spelling_of_every_rule():
    spellings = {spelling.text for rule in RULES for spelling in rule.spellings}
    assert spellings == set(ROW_EFFECTS)


def test_docs_list_every_option():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    names = [s.text for rule in RULES for s in rule.spellings] + [flag.name for flag in NANOBRAG_FLAGS]
    missing = [name for name in names if not re.search(rf"`{re.escape(name)}[ `]", docs)]
    assert not missing, f"docs/cli.md does not mention {missing}"


def test_config_refuses_nan_wavelength_and_pixel():
    with pytest.raises(ValidationError, match="finite number"):
        BeamConfig(wavelength_A=float("nan"))
    with pytest.raises(ValidationError, match="greater than 0"):
        BeamConfig(wavelength_A=0.0)
    with pytest.raises(ValidationError, match="finite number"):
        DetectorConfig(pixel_mm=float("nan"))
    with pytest.raises(ValidationError, match="greater than 0"):
        DetectorConfig(pixel_mm=-0.1)
