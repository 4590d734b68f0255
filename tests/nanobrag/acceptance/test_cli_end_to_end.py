"""The whole command, simulation included, against the nanoBragg C program's files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from nanobrag import cli
from nanobrag.io.images import read_float_image
from nanobrag.io.smv import read_smv

from ..golden_cases import SMV_CASE_OUTPUT_ARGS, assert_smv_case_outputs_identical, case, float_image

pytestmark = pytest.mark.golden


def test_smv_int_noise_files_are_byte_identical(shared_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(case(shared_dir, "smv_int_noise")["args"] + SMV_CASE_OUTPUT_ARGS + ["-quiet"]) == 0
    assert_smv_case_outputs_identical(shared_dir, tmp_path)


def _run_case(shared_dir, name: str, *extra: str) -> np.ndarray:
    args = case(shared_dir, name)["args"] + ["-floatfile", "f.bin", "-nopgm", "-nonoise", "-quiet", *extra]
    assert cli.main(args) == 0
    return read_float_image("f.bin", shape=tuple(case(shared_dir, name)["shape"]))


def test_hkl_file_then_its_cache_reproduce_nanobragg(shared_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(shared_dir / "golden" / "sparse.hkl", tmp_path)
    reference = float_image(shared_dir, "hkl_sparse_default")
    np.testing.assert_allclose(_run_case(shared_dir, "hkl_sparse_default"), reference, rtol=1e-6, atol=0)
    assert (tmp_path / "Fdump.bin").exists()  # nanoBragg's cache, in the working directory
    # Without -hkl the cache written by the first run stands in for the list, as in nanoBragg.
    args = [a for a in case(shared_dir, "hkl_sparse_default")["args"] if a not in ("-hkl", "sparse.hkl")]
    (tmp_path / "sparse.hkl").unlink()
    assert cli.main(args + ["-floatfile", "g.bin", "-nopgm", "-nonoise", "-quiet"]) == 0
    np.testing.assert_array_equal(read_float_image("g.bin"), read_float_image("f.bin"))


def test_matrix_file_case(shared_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(shared_dir / "golden" / "A.mat", tmp_path)
    np.testing.assert_allclose(
        _run_case(shared_dir, "mat_file"), float_image(shared_dir, "mat_file"), rtol=1e-6, atol=0
    )


def test_roi_renders_only_its_pixels_in_every_file(shared_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    roi = (100, 140, 90, 120)
    args = case(shared_dir, "simple_cubic")["args"] + ["-roi", *map(str, roi), "-seed", "3", "-quiet"]
    assert cli.main(args) == 0
    inside = (slice(roi[2], roi[3] + 1), slice(roi[0], roi[1] + 1))
    image = read_float_image("floatimage.bin")
    np.testing.assert_allclose(image[inside], float_image(shared_dir, "simple_cubic")[inside], rtol=1e-6, atol=0)
    outside = np.ones(image.shape, bool)
    outside[inside] = False
    for pixels in (image, read_smv("intimage.img")[1], read_smv("noiseimage.img")[1]):
        assert not pixels[outside].any() and pixels[inside].any()
