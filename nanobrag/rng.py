"""nanoBragg's seeded random-number generators, reproduced bit for bit.

nanoBragg uses the Numerical Recipes generators: ``ran1`` (Park-Miller minimal standard with a
Bays-Durham shuffle table), ``gaussdev``, ``gammln`` and ``poidev``, plus its own
``mosaic_rotation_umat`` and ``umat2misset``. Several of them compute in C ``float`` (32-bit); the
helper :func:`f32` rounds a Python float to the nearest float32 exactly where the C code stores or
computes a float, so that draws agree with the C program to the last bit.

In C the generators keep ``static`` state that every seed variable shares: the shuffle table of
``ran1`` (re-initialised whenever a call sees a negative seed), the spare deviate of ``gaussdev`` and
the cached mean of ``poidev``. Here that state is an explicit :class:`GeneratorStatics` object, and a
seed variable (C's ``long idum``) is a :class:`SeededStream` bound to one such object. Streams that
share a statics object behave like nanoBragg's seeds within one process.

User seeds follow nanoBragg's flags: ``-seed 7`` means ``idum = -7``; the same for ``-mosaic_seed``
and ``-misset_seed``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "GeneratorStatics",
    "SeededStream",
    "f32",
    "gammln",
    "mosaic_domain_draws",
    "mosaic_rotation_umat",
    "random_misset_angles",
    "umat2misset",
]

# ran1's constants, as nanoBragg defines them.
_IA = 16807
_IM = 2147483647
_AM = 1.0 / _IM
_IQ = 127773
_IR = 2836
_NTAB = 32
_NDIV = 1 + (_IM - 1) // _NTAB
_RNMX = 1.0 - 1.2e-7

_FLOAT32 = struct.Struct("f")


def f32(x: float) -> float:
    """Round ``x`` to the nearest float32, as a C assignment to ``float`` does."""
    return _FLOAT32.unpack(_FLOAT32.pack(x))[0]


_RNMX_F32 = f32(_RNMX)  # ran1 returns RNMX through its float return type
_ONE_THIRD_F32 = f32(1.0 / 3.0)  # the exponent mosaic_rotation_umat hands to powf

# The generators below are written once, in the subset of Python that numba compiles: with numba
# installed they run as machine code (the noise image visits every pixel sequentially, so this is
# what makes a 4096x4096 noise image take a fraction of a second rather than minutes); without it
# they run as plain Python and give the same numbers. They are pure functions of their state:
# a seed variable (C's ``long idum``), ran1's last shuffle entry ``iy`` (0: never filled), its
# shuffle ``table`` (the one array, updated in place as C updates its static ``iv``), and
# gaussdev's and poidev's cached values as a tuple, so a compiled loop keeps all but the table in
# registers.
_njit: Callable[..., Any] | None
try:
    from numba import njit as _njit
except ImportError:  # pragma: no cover - numba is a dependency; the fallback keeps results identical
    _njit = None

_Function = TypeVar("_Function", bound=Callable[..., Any])


def _sequential(function: _Function) -> _Function:
    if _njit is None:
        return function
    compiled: _Function = _njit(cache=True, nogil=True, inline="always")(function)
    return compiled


# The cached tuple: gaussdev's spare deviate (flag, value), poidev's last mean and its sq, alxm, g.
Cache = tuple[float, float, float, float, float, float]
Table = npt.NDArray[np.int64]  # ran1's shuffle table
_FRESH_CACHE: Cache = (0.0, 0.0, -1.0, 0.0, 0.0, 0.0)


@_sequential
def _as_f32(x: float) -> float:
    return np.float64(np.float32(x))


@_sequential
def _ran1(seed: int, iy: int, table: Table) -> tuple[float, int, int]:
    """nanoBragg's ran1: (deviate, seed, iy) after one draw."""
    if seed <= 0 or iy == 0:
        # A negative seed (or the very first call) refills the shared shuffle table.
        seed = 1 if -seed < 1 else -seed
        for j in range(_NTAB + 7, -1, -1):
            k = seed // _IQ
            seed = _IA * (seed - k * _IQ) - _IR * k
            if seed < 0:
                seed += _IM
            if j < _NTAB:
                table[j] = seed
        iy = table[0]
    k = seed // _IQ
    seed = _IA * (seed - k * _IQ) - _IR * k
    if seed < 0:
        seed += _IM
    j = iy // _NDIV
    iy = table[j]
    table[j] = seed
    temp = _as_f32(_AM * iy)
    return (_RNMX_F32 if temp > _RNMX else temp), seed, iy


@_sequential
def _gaussdev(seed: int, iy: int, table: Table, cached: Cache) -> tuple[float, int, int, Cache]:
    """Unit normal deviate (Box-Muller, polar form), keeping the spare deviate like C."""
    if cached[0] != 0.0:
        return cached[1], seed, iy, (0.0, 0.0, cached[2], cached[3], cached[4], cached[5])
    while True:
        r1, seed, iy = _ran1(seed, iy, table)
        r2, seed, iy = _ran1(seed, iy, table)
        v1 = _as_f32(2.0 * r1 - 1.0)
        v2 = _as_f32(2.0 * r2 - 1.0)
        rsq = _as_f32(_as_f32(v1 * v1) + _as_f32(v2 * v2))
        if rsq < 1.0 and rsq != 0.0:
            break
    fac = _as_f32(math.sqrt(-2.0 * math.log(rsq) / rsq))
    return _as_f32(v2 * fac), seed, iy, (1.0, _as_f32(v1 * fac), cached[2], cached[3], cached[4], cached[5])


@_sequential
def _gammln(xx: float) -> float:
    """ln(Gamma(xx)) for xx > 0 (Lanczos), with C's float argument and float result."""
    x = _as_f32(xx)
    y = x
    tmp = x + 5.5
    tmp -= (x + 0.5) * math.log(tmp)
    ser = 1.000000000190015
    for coeff in (
        76.18009172947146,
        -86.50532032941677,
        24.01409824083091,
        -1.231739572450155,
        0.1208650973866179e-2,
        -0.5395239384953e-5,
    ):
        y += 1.0
        ser += coeff / y
    return _as_f32(-tmp + math.log(2.5066282746310005 * ser / x))


@_sequential
def _poidev(xm: float, seed: int, iy: int, table: Table, cached: Cache) -> tuple[float, int, int, Cache]:
    """Poisson deviate with mean ``xm`` (a float32 value), as nanoBragg's poidev draws it."""
    if xm > 1.0e6:
        normal, seed, iy, cached = _gaussdev(seed, iy, table, cached)
        return _as_f32(xm + math.sqrt(xm) * normal), seed, iy, cached
    spare, spare_value, old_mean, sq, alxm, g = cached
    if xm < 12.0:
        # Direct method: multiply uniform deviates until the product drops below exp(-xm).
        if xm != old_mean:
            old_mean = xm
            g = _as_f32(math.exp(-xm))
        em = -1.0
        t = 1.0
        while True:
            em += 1.0
            uniform, seed, iy = _ran1(seed, iy, table)
            t = _as_f32(t * uniform)
            if not t > g:
                return em, seed, iy, (spare, spare_value, old_mean, sq, alxm, g)
    # Rejection method with a Lorentzian comparison function.
    if xm != old_mean:
        old_mean = xm
        sq = _as_f32(math.sqrt(2.0 * xm))
        alxm = _as_f32(math.log(xm))
        g = _as_f32(_as_f32(xm * alxm) - _gammln(xm + 1.0))
    while True:
        while True:
            uniform, seed, iy = _ran1(seed, iy, table)
            y = _as_f32(math.tan(math.pi * uniform))
            em = _as_f32(_as_f32(sq * y) + xm)
            if not em < 0.0:
                break
        em = float(math.floor(em))
        exponent = _as_f32(_as_f32(_as_f32(em * alxm) - _gammln(em + 1.0)) - g)
        t = _as_f32(0.9 * (1.0 + _as_f32(y * y)) * math.exp(exponent))
        uniform, seed, iy = _ran1(seed, iy, table)
        if not uniform > t:
            return em, seed, iy, (spare, spare_value, old_mean, sq, alxm, g)


@_sequential
def _noise_pixels(
    image: npt.NDArray[np.float32],
    row0: int,
    row1: int,
    col0: int,
    col1: int,
    adc_offset: float,
    seed: int,
    iy: int,
    table: Table,
    cached: Cache,
    out: npt.NDArray[np.uint16],
) -> tuple[float, int, int, int, Cache]:
    """Poisson-noise counts of rows/columns [row0, row1) x [col0, col1), slow-outer, fast-inner.

    Returns (photons, overloads, seed, iy, cached): the generator state the loop leaves.
    """
    photons = 0.0
    overloads = 0
    for spixel in range(row0, row1):
        for fpixel in range(col0, col1):
            drawn, seed, iy, cached = _poidev(np.float64(image[spixel, fpixel]), seed, iy, table, cached)
            photons += drawn
            value = drawn + adc_offset
            if value > 65535.0:
                value = 65535.0
                overloads += 1
            out[spixel, fpixel] = int(value) if value > 0.0 else 0  # C truncates; negatives clipped
    return photons, overloads, seed, iy, cached


class GeneratorStatics:
    """The C ``static`` variables of ran1, gaussdev and poidev (one set per C process)."""

    def __init__(self) -> None:
        self.last = 0  # ran1's iy; 0 means "never filled"
        self.table = np.zeros(_NTAB, dtype=np.int64)  # ran1's iv
        self.cached = _FRESH_CACHE  # gaussdev's spare, poidev's mean, sq, alxm, g

    @property
    def poisson_mean(self) -> float:
        return float(self.cached[2])

    @property
    def poisson_alxm(self) -> float:
        return float(self.cached[4])


class SeededStream:
    """One C seed variable (``long idum``) drawing from the shared statics."""

    def __init__(self, idum: int, statics: GeneratorStatics | None = None) -> None:
        self.idum = int(idum)
        self.statics = statics if statics is not None else GeneratorStatics()

    @classmethod
    def from_user_seed(cls, seed: int, statics: GeneratorStatics | None = None) -> SeededStream:
        """The stream nanoBragg makes from ``-seed N`` (and the other seed flags): idum = -N."""
        return cls(-int(seed), statics)

    def ran1(self) -> float:
        """Uniform deviate in (0, 1), exactly as nanoBragg's ran1 returns it (a float32 value)."""
        st = self.statics
        value, self.idum, st.last = _ran1(self.idum, st.last, st.table)
        return float(value)

    def gaussdev(self) -> float:
        """Unit normal deviate (Box-Muller, polar form), keeping the spare deviate like C."""
        st = self.statics
        value, self.idum, st.last, st.cached = _gaussdev(self.idum, st.last, st.table, st.cached)
        return float(value)

    def poidev(self, xm: float) -> float:
        """Poisson deviate with mean ``xm`` (a float32 value), as nanoBragg's poidev draws it."""
        st = self.statics
        value, self.idum, st.last, st.cached = _poidev(float(xm), self.idum, st.last, st.table, st.cached)
        return float(value)

    def noise(
        self, image: np.ndarray, rows: slice, cols: slice, adc_offset: float, out: np.ndarray
    ) -> tuple[float, int]:
        """Noise counts of ``image[rows, cols]`` into ``out`` in one compiled loop: (photons, overloads)."""
        st = self.statics
        photons, overloads, self.idum, st.last, st.cached = _noise_pixels(
            image, rows.start, rows.stop, cols.start, cols.stop, float(adc_offset),
            self.idum, st.last, st.table, st.cached, out,
        )  # fmt: skip
        return float(photons), int(overloads)


def gammln(xx: float) -> float:
    """ln(Gamma(xx)) for xx > 0 (Lanczos), with C's float argument and float result."""
    return float(_gammln(float(xx)))


def _draw_cap_rotation(stream: SeededStream) -> tuple[tuple[float, float, float], float]:
    """The three ran1 draws of mosaic_rotation_umat: a unit axis and powf(1 - r3^2, 1/3)."""
    r1 = 2.0 * stream.ran1() - 1.0
    r2 = 2.0 * stream.ran1() - 1.0
    r3 = 2.0 * stream.ran1() - 1.0
    xyrad = math.sqrt(1.0 - r2 * r2)
    axis = (xyrad * math.sin(math.pi * r1), xyrad * math.cos(math.pi * r1), r2)
    # powf in float; correctly rounded double pow rounded to float32 reproduces glibc's powf.
    factor = f32(math.pow(f32(1.0 - r3 * r3), _ONE_THIRD_F32))
    return axis, factor


def _axis_angle_matrix(axis: tuple[float, float, float], rot: float) -> np.ndarray:
    """The rotation matrix mosaic_rotation_umat assembles, term by term in C's order."""
    v1, v2, v3 = axis
    t1 = math.cos(rot)
    t2 = 1.0 - t1
    t6 = t2 * v1
    t7 = t6 * v2
    t8 = math.sin(rot)
    t9 = t8 * v3
    t11 = t6 * v3
    t12 = t8 * v2
    t19 = t2 * v2 * v3
    t20 = t8 * v1
    return np.array(
        [
            [t1 + t2 * (v1 * v1), t7 - t9, t11 + t12],
            [t7 + t9, t1 + t2 * (v2 * v2), t19 - t20],
            [t11 - t12, t19 + t20, t1 + t2 * (v3 * v3)],
        ],
        dtype=np.float64,
    )


def mosaic_rotation_umat(mosaicity_rad: float, stream: SeededStream) -> np.ndarray:
    """A random rotation within a spherical cap, exactly as nanoBragg builds it (3x3, row-major).

    ``mosaicity_rad`` passes through C's ``float`` parameter, and the angle
    ``mosaicity * powf(1 - r3^2, 1/3)`` is a float product.
    """
    axis, factor = _draw_cap_rotation(stream)
    rot = f32(f32(mosaicity_rad) * factor)
    return _axis_angle_matrix(axis, rot)


def mosaic_domain_draws(
    domains: int, seed: int, statics: GeneratorStatics | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mosaic domain rotations in reparameterised form, from ``-mosaic_seed`` ``seed``.

    Returns ``axes`` (D, 3) float64 unit vectors and ``angle_factors`` (D,) such that domain d is a
    rotation about ``axes[d]`` by ``mosaic_spread_rad * angle_factors[d]``. nanoBragg forces domain
    0 to the identity after drawing it, so its factor is 0 but its draws are still consumed. (C
    rounds the product spread * factor to float32; the reparameterised angle is the exact product.)
    """
    stream = SeededStream.from_user_seed(seed, statics)
    axes = np.zeros((domains, 3), dtype=np.float64)
    factors = np.zeros(domains, dtype=np.float64)
    for d in range(domains):
        axis, factor = _draw_cap_rotation(stream)
        axes[d] = axis
        factors[d] = 0.0 if d == 0 else factor
    return axes, factors


def umat2misset(umat: np.ndarray) -> tuple[float, float, float]:
    """Missetting angles (rotx, roty, rotz) in radians of a rotation matrix, as nanoBragg derives them."""
    (uxx, uxy, uxz), (uyx, uyy, uyz), (uzx, uzy, uzz) = (tuple(map(float, row)) for row in umat)

    def normalised(x: float, y: float, z: float) -> tuple[float, float, float, float]:
        m = math.sqrt(x * x + y * y + z * z)
        return (x / m, y / m, z / m, m) if m > 0 else (x, y, z, m)

    uxx, uxy, uxz, mx = normalised(uxx, uxy, uxz)
    uyx, uyy, uyz, my = normalised(uyx, uyy, uyz)
    uzx, uzy, uzz, mz = normalised(uzx, uzy, uzz)
    if mx >= 0 and my <= 0 and mz <= 0:
        uyx, uyy, uyz = 0.0, 1.0, 0.0
        uzx, uzy, uzz = 0.0, 0.0, 1.0
    if mx <= 0 and my >= 0 and mz <= 0:
        uxx, uxy, uxz = 1.0, 0.0, 0.0
        uzx, uzy, uzz = 0.0, 0.0, 1.0
    if mx <= 0 and my <= 0 and mz >= 0:
        uxx, uxy, uxz = 1.0, 0.0, 0.0
        uyx, uyy, uyz = 0.0, 1.0, 0.0
    # nanoBragg replaces any empty row by the cross product of the other two, twice over.
    for _ in range(2):
        xcy = normalised(uxy * uyz - uxz * uyy, uxz * uyx - uxx * uyz, uxx * uyy - uxy * uyx)[:3]
        ycz = normalised(uyy * uzz - uyz * uzy, uyz * uzx - uyx * uzz, uyx * uzy - uyy * uzx)[:3]
        zcx = normalised(uzy * uxz - uzz * uxy, uzz * uxx - uzx * uxz, uzx * uxy - uzy * uxx)[:3]
        if mx <= 0:
            uxx, uxy, uxz = ycz
        if my <= 0:
            uyx, uyy, uyz = zcx
        if mz <= 0:
            uzx, uzy, uzz = xcy
    uxx, uxy, uxz, _ = normalised(uxx, uxy, uxz)
    uyx, uyy, uyz, _ = normalised(uyx, uyy, uyz)
    uzx, uzy, uzz, _ = normalised(uzx, uzy, uzz)
    if uzx * uzx < 1.0:
        return (
            math.atan2(uzy, uzz),
            math.atan2(-uzx, math.sqrt(uzy * uzy + uzz * uzz)),
            math.atan2(uyx, uxx),
        )
    return (math.atan2(1, 1) * 4, math.atan2(1, 1) * 2, math.atan2(uxy, -uyy))


def random_misset_angles(seed: int, statics: GeneratorStatics | None = None) -> tuple[float, float, float]:
    """The (rotx, roty, rotz) radians nanoBragg picks for ``-misset random`` with ``-misset_seed`` ``seed``.

    nanoBragg draws a "spherical cap" rotation of 90 (radians, passed as-is) and converts it to
    missetting angles.
    """
    stream = SeededStream.from_user_seed(seed, statics)
    return umat2misset(mosaic_rotation_umat(90.0, stream))
