"""nanoBragg's quirks: what the 2017 C program does, and what nanobrag does with ``-corrected``.

By default nanobrag renders the C program's image, quirks included, because that image is what a
drop-in replacement must reproduce. ``-corrected`` (Python: ``SimulationConfig(corrected=True)``)
switches every quirk to its physically corrected behaviour at once. Each quirk is one field of
:class:`Quirks`; ``True`` means "do what nanoBragg does". docs/physics.md describes them one by one.

The quirks are read where they act: the flag parser for the SMV header ones (:mod:`nanobrag.flags`),
setup for the rest (:mod:`nanobrag.setup`), which hands the renderer only resolved Setup fields.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .io.smv import RTD


@dataclass(frozen=True)
class Quirks:
    """One switch per nanoBragg quirk; True reproduces the C program."""

    # -- SMV headers read by -img and -mask
    header_distance_is_close_distance: bool = True  # "DISTANCE" finds the last match: CLOSE_DISTANCE's value
    header_close_distance_overrides_distance: bool = True  # the header's CLOSE_DISTANCE beats -distance
    header_twotheta_ignored: bool = True  # TWOTHETA is read into a scratch variable
    mask_beam_center_y_flipped: bool = True  # -mask reads BEAM_CENTER_Y as detsize - value (-img does not)
    # -- detector
    pix0_vector_ignored: bool = True  # -pix0_vector selects CUSTOM, then its value is overwritten
    curved_detector_lab_axes: bool = True  # -curved_det bends by the lab y, z components of the flat position
    # -- crystal
    stale_phi0: bool = True  # a spindle step at exactly phi = 0 keeps the previous step's orientation
    # -- intensity
    first_subpixel_factors: bool = True  # omega, polarization, capture once per pixel (last layer's capture)
    oversample_running_product: bool = True  # -oversample_* multiply the running sum, not the contribution
    water_background_per_step: bool = True  # water divided by steps and scaled by r_e^2 * fluence twice
    source_weights_ignored: bool = True  # -sourcefile intensities are read and dropped
    sticky_interpolation: bool = True  # one out-of-range stencil turns interpolation off for the rest of the run

    @classmethod
    def nanobragg(cls) -> Quirks:
        """Every quirk as the C program has it (the default)."""
        return cls()

    @classmethod
    def corrected(cls) -> Quirks:
        """Every quirk corrected (``-corrected``)."""
        return cls(**{field.name: False for field in fields(cls)})

    @classmethod
    def of(cls, corrected: bool) -> Quirks:
        return cls.corrected() if corrected else cls.nanobragg()


def stale_phi_angles(start: float, step: float, steps: int) -> tuple[list[float], list[float]]:
    """The spindle angles (radians) nanoBragg really uses at each phi step, when ``stale_phi0`` holds.

    C rotates the crystal only when a step's angle is non-zero; at exactly 0 it keeps the orientation
    left in its rotated-cell variables: the previous step's, and at step 0 the last non-zero step of
    the previous spindle sweep (the previous source, sub-pixel, layer or pixel). Only the run's very
    first sweep (first pixel, layer, sub-pixel and source not cut by -dmin) sees the unrotated crystal
    there. Returns (angles as used by every sweep after the first, angles for the first sweep).
    """
    angles = [start + step * tic for tic in range(steps)]  # the C expression phi0 + phistep*phi_tic
    nonzero = [phi for phi in angles if phi != 0.0]
    carried_over = nonzero[-1] if nonzero else 0.0  # what the previous pixel left behind

    def as_evaluated(initial: float) -> list[float]:
        current, used = initial, []
        for phi in angles:
            if phi != 0.0:
                current = phi
            used.append(current)
        return used

    return as_evaluated(carried_over), as_evaluated(0.0)


__all__ = ["RTD", "Quirks", "stale_phi_angles"]
