"""The noise image: Poisson photon counts drawn from the float image, plus the ADC offset.

Two engines:

- ``"c"`` (default): nanoBragg's own generator, so a given ``-seed`` gives nanoBragg's noise file
  pixel for pixel. Each deviate depends on the generator state the previous pixel left (one stream,
  slow-outer, fast-inner), so the loop is sequential by nature; it runs compiled
  (see :mod:`nanobrag.rng`).
- ``"torch"``: ``torch.poisson`` on the image's device, vectorised. Statistically the same process,
  reproducible for a seed, but not nanoBragg's numbers.

Both clip counts at 65535 (overloads) and truncate to unsigned 16-bit integers as nanoBragg does;
pixels outside the region of interest stay 0.
"""

from __future__ import annotations

import threading

import numpy as np

from .io.images import Roi, roi_slices
from .rng import GeneratorStatics, SeededStream

ENGINES = ("c", "torch")


_warm_up: threading.Thread | None = None


def prepare_in_background(engine: str) -> None:
    """Load the compiled generator in a thread while the image renders: numba's import and its
    cached machine code cost a fraction of a second, which the render then hides."""
    global _warm_up

    def warm_up() -> None:
        if engine == "c":
            pixel = np.zeros((1, 1), dtype=np.float32)
            SeededStream(-1).noise(pixel, slice(0, 1), slice(0, 1), 0.0, np.zeros((1, 1), dtype=np.uint16))

    _warm_up = threading.Thread(target=warm_up, name="nanobrag-noise-warm-up", daemon=True)
    _warm_up.start()


_OVERLOAD = 65535.0


def noise_image(
    float_image: np.ndarray,
    seed: int,
    adc_offset: float,
    roi: Roi | None = None,
    engine: str = "c",
    statics: GeneratorStatics | None = None,
    device: str = "cpu",
) -> tuple[np.ndarray, float, int]:
    """Noise pixels for ``-seed`` ``seed``: (uint16 image (slow, fast), photons drawn, overloads).

    ``roi`` = (xmin, xmax, ymin, ymax), inclusive. ``statics`` continues a C process's generator
    state (engine ``"c"``); ``device`` is where the ``"torch"`` engine draws.
    """
    if _warm_up is not None:
        _warm_up.join()
    image = np.ascontiguousarray(float_image, dtype=np.float32)
    rows, cols = roi_slices(image.shape, roi)
    if engine == "c":
        out = np.zeros(image.shape, dtype=np.uint16)
        photons, overloads = SeededStream.from_user_seed(seed, statics).noise(image, rows, cols, adc_offset, out)
        return out, photons, overloads
    if engine == "torch":
        return _torch_noise(image, rows, cols, seed, adc_offset, device)
    raise ValueError(f"noise engine must be one of {ENGINES}, not {engine!r}")


def _torch_noise(
    image: np.ndarray, rows: slice, cols: slice, seed: int, adc_offset: float, device: str
) -> tuple[np.ndarray, float, int]:
    import torch

    generator = torch.Generator(device=device).manual_seed(int(seed) % 2**63)
    mean = torch.as_tensor(image[rows, cols], device=device).to(torch.float64).clamp_min(0.0)
    counts = torch.poisson(mean, generator=generator)
    value = counts + adc_offset
    overloads = int((value > _OVERLOAD).sum())
    pixels = value.clamp(0.0, _OVERLOAD).to(torch.int32)  # truncation, as C's cast to unsigned short
    out = np.zeros(image.shape, dtype=np.uint16)
    out[rows, cols] = pixels.cpu().numpy().astype(np.uint16)
    return out, float(counts.sum()), overloads
