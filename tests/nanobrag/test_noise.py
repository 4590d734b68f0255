"""The vectorised torch noise engine (the C-identical engine is checked against C in test_rng.py)."""

from __future__ import annotations

import numpy as np
import pytest

from nanobrag.noise import noise_image


def test_torch_engine_is_reproducible_and_poisson():
    image = np.full((200, 300), 40.0, dtype=np.float32)
    first, photons, overloads = noise_image(image, seed=3, adc_offset=10.0, engine="torch")
    again, _, _ = noise_image(image, seed=3, adc_offset=10.0, engine="torch")
    other, _, _ = noise_image(image, seed=4, adc_offset=10.0, engine="torch")
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    counts = first.astype(np.float64) - 10.0
    assert counts.mean() == pytest.approx(40.0, abs=0.1)  # 60,000 draws: standard error 0.026
    assert counts.var() == pytest.approx(40.0, rel=0.05)  # Poisson: variance = mean
    assert photons == pytest.approx(counts.sum()) and overloads == 0


def test_torch_engine_clips_overloads_and_keeps_outside_the_roi_zero():
    image = np.array([[1e6, 5.0], [5.0, 5.0]], dtype=np.float32)
    pixels, _, overloads = noise_image(image, seed=1, adc_offset=40.0, roi=(0, 0, 0, 1), engine="torch")
    assert overloads == 1 and pixels[0, 0] == 65535
    assert pixels[0, 1] == 0 and pixels[1, 1] == 0 and pixels[1, 0] > 0


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="noise engine"):
        noise_image(np.zeros((2, 2), dtype=np.float32), seed=1, adc_offset=0.0, engine="dice")
