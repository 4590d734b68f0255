"""Detector geometry: conventions, beam centre, pivots, rotations, pixel positions, solid angle, sensor.

The derivation of pix0 (the vector from the crystal to the first pixel's corner) follows nanoBragg
exactly, including its quirks: the conventions force their own pivot, the "ratio" of distance to
close distance ignores the two-theta swing, and XDS/DIALS geometry is placed from ORGX/ORGY while
Xbeam/Ybeam only feed the header.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .config import Convention, DetectorConfig, Pivot
from .rotations import rotate_about_axis, unit, xyz_rotation
from .sampling import SENSOR, complete_sampling

# Basis of each convention: beam, fast, slow, normal, two-theta axis, polarization, spindle.
_CONVENTION_AXES: dict[Convention, dict[str, tuple[float, float, float]]] = {
    Convention.MOSFLM: dict(
        beam=(1, 0, 0),
        fdet=(0, 0, 1),
        sdet=(0, -1, 0),
        odet=(1, 0, 0),
        twotheta_axis=(0, 0, -1),
        polar=(0, 0, 1),
        spindle=(0, 0, 1),
    ),
    Convention.DENZO: dict(
        beam=(1, 0, 0),
        fdet=(0, 0, 1),
        sdet=(0, -1, 0),
        odet=(1, 0, 0),
        twotheta_axis=(0, 0, -1),
        polar=(0, 0, 1),
        spindle=(0, 0, 1),
    ),
    Convention.ADXV: dict(
        beam=(0, 0, 1),
        fdet=(1, 0, 0),
        sdet=(0, -1, 0),
        odet=(0, 0, 1),
        twotheta_axis=(-1, 0, 0),
        polar=(1, 0, 0),
        spindle=(1, 0, 0),
    ),
    Convention.XDS: dict(
        beam=(0, 0, 1),
        fdet=(1, 0, 0),
        sdet=(0, 1, 0),
        odet=(0, 0, 1),
        twotheta_axis=(1, 0, 0),
        polar=(1, 0, 0),
        spindle=(1, 0, 0),
    ),
    Convention.DIALS: dict(
        beam=(0, 0, 1),
        fdet=(1, 0, 0),
        sdet=(0, 1, 0),
        odet=(0, 0, 1),
        twotheta_axis=(0, 1, 0),
        polar=(0, 1, 0),
        spindle=(0, 1, 0),
    ),
    # nanoBragg's built-in defaults, used for whatever a CUSTOM setup leaves unspecified.
    Convention.CUSTOM: dict(
        beam=(1, 0, 0),
        fdet=(0, 0, 1),
        sdet=(0, -1, 0),
        odet=(1, 0, 0),
        twotheta_axis=(0, 1, 0),
        polar=(0, 0, 1),
        spindle=(0, 0, 1),
    ),
}
_FORCED_PIVOT = {
    Convention.MOSFLM: Pivot.BEAM,
    Convention.DENZO: Pivot.BEAM,
    Convention.ADXV: Pivot.BEAM,
    Convention.XDS: Pivot.SAMPLE,
    Convention.DIALS: Pivot.SAMPLE,
}


@dataclass(frozen=True)
class SensorLayers:
    """Sensor thickness sampling after nanoBragg's auto-selection (metres, 1/metre)."""

    thickness: float
    step: float
    steps: int
    mu: float


def resolve_sensor(cfg: DetectorConfig) -> SensorLayers:
    """The sensor's layers and attenuation after nanoBragg's rules (:data:`nanobrag.sampling.SENSOR`).

    Args:
        cfg: the detector settings (-detector_thick, -detector_thicksteps, -detector_abs).

    Returns:
        Thickness and layer step in metres, the number of layers, and mu in 1/metre (an unset
        attenuation depth of a thick sensor is its thickness; 0 or inf: no absorption).

    Example:
        >>> resolve_sensor(DetectorConfig(thick_um=450, thicksteps=4, absorption_depth_um=320))
        SensorLayers(thickness=0.00045, step=0.00015, steps=4, mu=3125.0)
    """
    thick = cfg.thick_um * 1e-6
    depth = cfg.absorption_depth_um
    if depth is None:
        mu = -1.0
    elif depth == 0.0 or math.isinf(depth):
        mu = 0.0
    else:
        mu = 1.0 / (depth * 1e-6)
    if thick > 0.0 and mu < 0.0:
        mu = 1.0 / thick
    layers = complete_sampling(thick, None, cfg.thicksteps, SENSOR)
    return SensorLayers(thickness=float(layers.range), step=float(layers.step), steps=layers.steps, mu=mu)


@dataclass(frozen=True)
class PixelGrid:
    fpixels: int
    spixels: int
    pixel_size: float  # metres
    detsize_f: float
    detsize_s: float


def resolve_pixel_grid(cfg: DetectorConfig) -> PixelGrid:
    """Pixel counts and detector size (metres): counts win over -detsize, as in nanoBragg.

    Example:
        >>> resolve_pixel_grid(DetectorConfig(pixel_mm=0.2, fpixels=30, spixels=20)).detsize_f
        0.006
    """
    pixel = cfg.pixel_mm / 1000.0
    detsize_f = cfg.detsize_f_mm / 1000.0
    detsize_s = cfg.detsize_s_mm / 1000.0
    if cfg.fpixels:
        detsize_f = pixel * cfg.fpixels
    if cfg.spixels:
        detsize_s = pixel * cfg.spixels
    fpixels = math.ceil(detsize_f / pixel - 0.5)
    spixels = math.ceil(detsize_s / pixel - 0.5)
    return PixelGrid(fpixels=fpixels, spixels=spixels, pixel_size=pixel, detsize_f=detsize_f, detsize_s=detsize_s)


@dataclass
class DetectorGeometry:
    """Resolved detector: unit axes, origin and the derived centres nanoBragg reports (metres)."""

    grid: PixelGrid
    fdet: torch.Tensor
    sdet: torch.Tensor
    odet: torch.Tensor
    beam: torch.Tensor  # unit vector along the incident beam
    polar: torch.Tensor
    spindle: torch.Tensor
    pix0: torch.Tensor
    distance: torch.Tensor
    close_distance: torch.Tensor
    Fbeam: torch.Tensor
    Sbeam: torch.Tensor
    Fclose: torch.Tensor
    Sclose: torch.Tensor
    Xbeam: torch.Tensor
    Ybeam: torch.Tensor
    dials_origin_mm: torch.Tensor
    Xclose: torch.Tensor  # -Xclose/-Yclose or their defaults (nanoBragg prints them)
    Yclose: torch.Tensor
    pivot: Pivot
    twotheta: torch.Tensor
    curved_lab_axes: bool = True  # -curved_det as nanoBragg bends it (see pixel_positions)

    @property
    def ORGX(self) -> torch.Tensor:
        return self.Fclose / self.grid.pixel_size + 0.5

    @property
    def ORGY(self) -> torch.Tensor:
        return self.Sclose / self.grid.pixel_size + 0.5


def resolve_axes(cfg: DetectorConfig) -> dict[str, tuple[float, float, float]]:
    """The convention's unit axes (beam, fdet, sdet, odet, twotheta_axis, polar, spindle), lab frame.

    A CUSTOM setup takes the user's vectors where given and nanoBragg's defaults elsewhere.

    Example:
        >>> resolve_axes(DetectorConfig(convention="xds"))["sdet"]
        (0, 1, 0)
    """
    axes = dict(_CONVENTION_AXES[cfg.convention])
    if cfg.convention is Convention.CUSTOM:
        user = dict(
            beam=cfg.beam_vector,
            fdet=cfg.fdet_vector,
            sdet=cfg.sdet_vector,
            odet=cfg.odet_vector,
            twotheta_axis=cfg.twotheta_axis,
            polar=cfg.polar_vector,
        )
        axes.update({name: vec for name, vec in user.items() if vec is not None})
    return axes


def detector_geometry(
    cfg: DetectorConfig,
    *,
    distance: torch.Tensor,
    beam_x: torch.Tensor | None,
    beam_y: torch.Tensor | None,
    rotations: torch.Tensor,
    twotheta: torch.Tensor,
    spindle_axis: tuple[float, float, float] | None = None,
    honour_pix0: bool = False,
    curved_lab_axes: bool = True,
) -> DetectorGeometry:
    """Place the detector in the lab frame as nanoBragg does: axes, rotations, pivot and origin.

    Convention: the lab frame of ``cfg.convention`` (MOSFLM: beam along +x); the detector is turned
    by -rotx/-roty/-rotz (:func:`nanobrag.rotations.xyz_rotation`), then swung by two-theta about
    the convention's axis, pivoting about the beam spot (BEAM) or the sample (SAMPLE; XDS and DIALS
    force it). ``pix0`` is the vector from the crystal to the first pixel's outer corner.

    Args:
        cfg: detector settings (size, convention, pivot, beam and close centres, vectors).
        distance: crystal-to-detector distance along the beam, metres, shape (); sets dtype and device.
        beam_x: -Xbeam in metres, shape (), or None for the convention's default.
        beam_y: -Ybeam in metres, shape (), or None.
        rotations: -rotx, -roty, -rotz in radians, shape (3,).
        twotheta: the two-theta swing in radians, shape ().
        spindle_axis: the spindle in the lab frame, or None for the convention's.
        honour_pix0: use -pix0_vector as the origin (nanoBragg parses it, then overwrites it: False).
        curved_lab_axes: how :func:`pixel_positions` bends a -curved_det detector (nanobrag.compat).

    Returns:
        The :class:`DetectorGeometry`: unit axes (3,), pix0 (3,) and the derived distances and beam
        and close centres nanoBragg prints, in metres, differentiable in every tensor argument.
    """
    dtype, device = distance.dtype, distance.device

    def vec(v: Sequence[float] | Sequence[Sequence[float]]) -> torch.Tensor:
        return torch.as_tensor(v, dtype=dtype, device=device)

    def scalar(x: float) -> torch.Tensor:
        return torch.tensor(float(x), dtype=dtype, device=device)

    grid = resolve_pixel_grid(cfg)
    pixel = grid.pixel_size
    axes = resolve_axes(cfg)
    conv = cfg.convention

    Fclose = scalar((cfg.ORGX - 0.5) * pixel if cfg.ORGX is not None else grid.detsize_f / 2.0)
    Sclose = scalar((cfg.ORGY - 0.5) * pixel if cfg.ORGY is not None else grid.detsize_s / 2.0)
    Xclose = scalar(cfg.Xclose_mm / 1000.0) if cfg.Xclose_mm is not None else Fclose
    Yclose = scalar(cfg.Yclose_mm / 1000.0) if cfg.Yclose_mm is not None else Sclose

    if conv is Convention.ADXV:
        Xbeam = beam_x if beam_x is not None else scalar((grid.detsize_f + pixel) / 2.0)
        Ybeam = beam_y if beam_y is not None else scalar((grid.detsize_s - pixel) / 2.0)
        Fbeam, Sbeam = Xbeam, grid.detsize_s - Ybeam
    elif conv in (Convention.MOSFLM, Convention.DENZO):
        Xbeam = beam_x if beam_x is not None else scalar((grid.detsize_s + pixel) / 2.0)
        Ybeam = beam_y if beam_y is not None else scalar((grid.detsize_f + pixel) / 2.0)
        shift = 0.5 * pixel if conv is Convention.MOSFLM else 0.0
        Fbeam, Sbeam = Ybeam + shift, Xbeam + shift
    else:
        Xbeam = beam_x if beam_x is not None else Xclose
        Ybeam = beam_y if beam_y is not None else Yclose
        Fbeam, Sbeam = Xbeam, Ybeam
        if conv is Convention.CUSTOM:
            Fclose, Sclose = Xbeam, Ybeam
    pivot = _FORCED_PIVOT.get(conv) or cfg.pivot or Pivot.BEAM

    beam = unit(vec(axes["beam"]))
    fdet = unit(vec(axes["fdet"]))
    sdet = unit(vec(axes["sdet"]))
    odet_raw = vec(axes["odet"])
    odet = unit(odet_raw)
    if float(odet_raw.norm()) != 1.0:
        # nanoBragg rebuilds a normal that was not given as a unit vector from fast x slow.
        odet = unit(torch.linalg.cross(fdet, sdet))
    polar = unit(vec(axes["polar"]))
    spindle = unit(vec(spindle_axis if spindle_axis is not None else axes["spindle"]))
    twotheta_axis = unit(vec(axes["twotheta_axis"]))

    rot = xyz_rotation(*rotations.unbind(-1))
    ratio = torch.dot(beam, rot @ odet)
    if float(ratio.detach()) == 0.0:
        ratio = ratio + torch.finfo(ratio.dtype).tiny  # nanoBragg adds the smallest double; here, of the dtype
    if cfg.close_distance_mm is not None:
        close_distance = scalar(cfg.close_distance_mm / 1000.0)
    else:
        close_distance = (ratio * distance).abs()
    distance = close_distance / ratio

    def swing(v: torch.Tensor) -> torch.Tensor:
        return rotate_about_axis(rot @ v, twotheta_axis, twotheta)

    if pivot is Pivot.SAMPLE:
        pix0 = swing(-Fclose * fdet - Sclose * sdet + close_distance * odet)
    fdet, sdet, odet = swing(fdet), swing(sdet), swing(odet)
    if pivot is Pivot.BEAM:
        pix0 = -Fbeam * fdet - Sbeam * sdet + distance * beam
    if cfg.pix0_vector_m is not None and honour_pix0:
        pix0 = vec(cfg.pix0_vector_m)

    Fclose = -torch.dot(pix0, fdet)
    Sclose = -torch.dot(pix0, sdet)
    close_distance = torch.dot(pix0, odet)
    beam_spot = close_distance / ratio * beam - pix0
    Fbeam = torch.dot(fdet, beam_spot)
    Sbeam = torch.dot(sdet, beam_spot)
    distance = close_distance / ratio
    dials_axes = vec([[0, 0, 1], [0, 1, 0], [-1, 0, 0]])
    return DetectorGeometry(
        grid=grid,
        fdet=fdet,
        sdet=sdet,
        odet=odet,
        beam=beam,
        polar=polar,
        spindle=spindle,
        pix0=pix0,
        distance=distance,
        close_distance=close_distance,
        Fbeam=Fbeam,
        Sbeam=Sbeam,
        Fclose=Fclose,
        Sclose=Sclose,
        Xbeam=torch.as_tensor(Xbeam, dtype=dtype, device=device),
        Ybeam=torch.as_tensor(Ybeam, dtype=dtype, device=device),
        dials_origin_mm=1000.0 * (dials_axes @ pix0),
        pivot=pivot,
        twotheta=twotheta,
        Xclose=Xclose,
        Yclose=Yclose,
        curved_lab_axes=curved_lab_axes,
    )


def resolve_roi(cfg: DetectorConfig, grid: PixelGrid) -> tuple[int, int, int, int]:
    """Inclusive (xmin, xmax, ymin, ymax) as nanoBragg resolves -roi; unset bounds cover everything.

    Example:
        >>> resolve_roi(DetectorConfig(roi=(2, -1, -1, 5)), PixelGrid(10, 8, 1e-4, 1e-3, 8e-4))
        (2, 10, 0, 5)
    """
    xmin, xmax, ymin, ymax = cfg.roi if cfg.roi is not None else (-1, -1, -1, -1)
    return (
        xmin if xmin >= 0 else 0,
        xmax if xmax >= 0 else grid.fpixels,
        ymin if ymin >= 0 else 0,
        ymax if ymax >= 0 else grid.spixels,
    )


class DetectorFrame(NamedTuple):
    """The tensors that place pixels in space (metres): what the renderer needs of the detector.

    ``pixel_size`` is a 0-d tensor so that compiled kernels take it as an input rather than
    baking it in.
    """

    pix0: torch.Tensor  # (3,) crystal to the first pixel's outer corner
    fdet: torch.Tensor  # (3,) unit fast axis
    sdet: torch.Tensor  # (3,) unit slow axis
    odet: torch.Tensor  # (3,) unit normal
    beam: torch.Tensor  # (3,) unit incident-beam direction (curved detectors start from it)
    distance: torch.Tensor  # () sphere radius of a curved detector
    close_distance: torch.Tensor  # () distance of the detector plane from the crystal
    pixel_size: torch.Tensor  # ()


def detector_frame(geom: DetectorGeometry) -> DetectorFrame:
    """The tensors of a resolved detector that place its pixels (what compiled kernels take)."""
    pixel = torch.tensor(geom.grid.pixel_size, dtype=geom.pix0.dtype, device=geom.pix0.device)
    return DetectorFrame(
        geom.pix0, geom.fdet, geom.sdet, geom.odet, geom.beam, geom.distance, geom.close_distance, pixel
    )


def pixel_positions(
    frame: DetectorFrame,
    slow: torch.Tensor,
    fast: torch.Tensor,
    sub_index: torch.Tensor,
    layer_depths: torch.Tensor,
    curved: bool,
    curved_lab_axes: bool = True,
) -> torch.Tensor:
    """Positions of sub-pixel centres relative to the crystal, in metres.

    Convention: component-first, pixels last (every per-evaluation tensor is contiguous along its
    longest axis); sub-pixels are slow-major, sub-pixel (i_slow, i_fast) at ``i_slow * O + i_fast``.

    Args:
        frame: the detector frame (:func:`detector_frame`).
        slow: slow pixel indices, shape (P,), integer.
        fast: fast pixel indices, shape (P,), integer.
        sub_index: ``arange(O)``, shape (O,), integer; its length is the oversampling O.
        layer_depths: offsets along the detector normal (sensor layers), metres, shape (T,).
        curved: bend the detector onto a sphere about the crystal (-curved_det).
        curved_lab_axes: how it is bent: nanoBragg's quirk (True) or corrected (see :mod:`nanobrag.compat`).

    Returns:
        Positions of shape (3, T, O*O, P) on ``frame``'s dtype and device.
    """
    dtype = frame.pix0.dtype
    oversample = sub_index.shape[0]
    sub = frame.pixel_size / oversample
    # Whole sub-pixel counts first (exact), then metres from pix0, as nanoBragg computes them.
    f_m = sub * (fast * oversample + sub_index[:, None]).to(dtype) + sub / 2.0  # (O, P)
    s_m = sub * (slow * oversample + sub_index[:, None]).to(dtype) + sub / 2.0

    def column(v: torch.Tensor) -> torch.Tensor:
        return v.view(3, 1, 1, 1)

    in_plane = s_m[None, :, None, :] * column(frame.sdet) + f_m[None, None, :, :] * column(frame.fdet)
    in_plane = in_plane.flatten(1, 2)  # (3, Q, P): sub-pixel (i_slow, i_fast) at i_slow * O + i_fast
    depth = layer_depths[None, :, None, None] * column(frame.odet)  # (3, T, 1, 1)
    pos = in_plane[:, None] + depth + column(frame.pix0)  # (3, T, Q, P)
    if curved:
        pos = _curved(frame, pos, curved_lab_axes)
    return pos


def _curved(frame: DetectorFrame, flat: torch.Tensor, lab_axes: bool) -> torch.Tensor:
    """Flat sub-pixel positions (3, ...) bent onto a sphere about the crystal (-curved_det)."""

    def column(v: torch.Tensor) -> torch.Tensor:
        return v.view((3,) + (1,) * (flat.dim() - 1))

    start = (frame.distance * column(frame.beam)).expand_as(flat)
    if lab_axes:
        # nanoBragg reads the lab y and z components of the flat position as arc lengths about the
        # slow and fast axes (which, in MOSFLM's frame, swaps and mirrors the image), at radius
        # "distance" whatever the sensor depth.
        bent = rotate_about_axis(start, frame.sdet, flat[1] / frame.distance, dim=0)
        return rotate_about_axis(bent, frame.fdet, flat[2] / frame.distance, dim=0)
    # Corrected: the offsets from the direct-beam spot along the detector's own fast and slow axes
    # are arc lengths at radius "distance", and a sensor layer's depth adds to the radius.
    offset = flat - start
    along_fast = (offset * column(frame.fdet)).sum(0)
    along_slow = (offset * column(frame.sdet)).sum(0)
    depth = (offset * column(frame.odet)).sum(0)
    toward_fast = unit(torch.linalg.cross(frame.beam, frame.fdet))  # rotating the beam about it moves it along fdet
    toward_slow = unit(torch.linalg.cross(frame.beam, frame.sdet))
    bent = rotate_about_axis(start, toward_fast, along_fast / frame.distance, dim=0)
    bent = rotate_about_axis(bent, toward_slow, along_slow / frame.distance, dim=0)
    return bent * ((frame.distance + depth) / frame.distance)


def solid_angle(frame: DetectorFrame, airpath: torch.Tensor, point_pixel: bool) -> torch.Tensor:
    """Solid angle of a pixel seen from the crystal, in steradians.

    Args:
        frame: the detector frame (pixel size and close distance).
        airpath: distance from the crystal to each (sub-)pixel, metres, any shape.
        point_pixel: nanoBragg's -point_pixel: 1 / R^2, ignoring the pixel's size and obliquity.

    Returns:
        (pixel / R)^2 * (close_distance / R), or 1 / R^2, shape of ``airpath``.
    """
    if point_pixel:
        return 1.0 / airpath**2
    return frame.pixel_size**2 / airpath**2 * frame.close_distance / airpath


def capture_fraction(
    parallax: torch.Tensor, layer: torch.Tensor, attenuation_per_layer: torch.Tensor | float
) -> torch.Tensor:
    """Fraction of the photons absorbed in sensor layer ``layer``, for rays at obliquity cos = ``parallax``.

    Args:
        parallax: cos of the angle between the ray and the detector normal, any shape.
        layer: the layer's index (0 at the front), broadcastable against ``parallax``.
        attenuation_per_layer: layer thickness times the attenuation coefficient (mu * step).

    Returns:
        exp(-layer d) - exp(-(layer + 1) d) with d = attenuation_per_layer / parallax.

    Example:
        >>> capture_fraction(torch.tensor(1.0), torch.arange(3.0), 0.5).sum()  # 1 - exp(-1.5)
        tensor(0.7769)
    """
    depth = attenuation_per_layer / parallax
    return torch.exp(-layer * depth) - torch.exp(-(layer + 1) * depth)
