"""Fit model parameters to a measured (or simulated) image by differentiating the simulation.

The loss is the squared residual between the target image T and the model image M times an overall
scale k, relative to the target: |T - k M|^2 / |T|^2. The scale is not a free parameter of the
optimiser: for each M the best k = <M, T> / <M, M> is solved in closed form (and differentiated
through), so intensity units never need a starting guess.

Optimiser: L-BFGS with a strong-Wolfe line search. The problem has a handful of parameters and a
deterministic, smooth objective, which is where a quasi-Newton method shines: it needs no learning
rate, every accepted step lowers the loss, and a noise-free fit reaches round-off in tens of
iterations where Adam needs hundreds and a learning rate tuned to each parameter's unit. Parameters
are optimised as offsets from the start in "natural steps" (0.5 degree for angles, 1% of the
starting value otherwise) so that one step means roughly the same for each of them.

Default coarse-to-fine schedule (:data:`DEFAULT_SCHEDULE`, stage names in :data:`STAGES`): first the
crystal is modelled with GAUSS spots ("gauss": same N and spot width as SQUARE spots but no side
lobes, so the loss has a wider, smoother basin), then with its own shape ("model"). A coarse stage
only steers: its result is kept only if the real model fits better there than where the stage
began. When spots are narrower than a pixel (an undersampled image) the GAUSS stand-in can steer
wrongly; use the schedule ("model",) there.

Before fitting, nanoBragg's automatic choices that depend on the refined parameters (oversampling,
N from -xtalsize) are frozen at the starting model's values; otherwise the loss would jump whenever
one of them changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .config import CrystalShape, SimulationConfig
from .detector import resolve_pixel_grid
from .errors import InputError
from .gradients import CELL_PARAMETERS, check_parameter_names, starting_values
from .renderer import simulate
from .setup import PARAMETERS, build_setup

REFINABLE = CELL_PARAMETERS + ("misset_x", "misset_y", "misset_z", "distance", "beam_x", "beam_y")

_ANGLE_STEP_DEG = 0.5
_RELATIVE_STEP = 0.01
_LINE_SEARCH_EVALUATIONS = 25


# Stage name -> the spot shape that stage models (None: the shape the configuration gives).
STAGES: dict[str, CrystalShape | None] = {"gauss": CrystalShape.GAUSS, "model": None}
DEFAULT_SCHEDULE = ("gauss", "model")


def check_schedule(names: Sequence[str], source: str = "schedule") -> list[str]:
    """Stage names as a list, or InputError naming ``source``; the last stage must fit the model itself."""
    unknown = [name for name in names if name not in STAGES]
    if unknown:
        raise InputError(f"{source}: unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}")
    if not names or names[-1] != "model":
        raise InputError(f"{source}: the last stage must be 'model' (the configured crystal shape)")
    return list(names)


@dataclass
class RefinementResult:
    """Outcome of :func:`refine`; ``initial``/``final`` include the closed-form ``scale``."""

    parameters: list[str]
    initial: dict[str, float]
    final: dict[str, float]
    final_loss: float
    # Stage after stage: the loss before the stage's first iteration, then the best loss after each.
    loss_history: list[float] = field(default_factory=list)
    iterations: int = 0
    converged: bool = False
    stages: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "parameters": self.parameters,
            "units": {name: PARAMETERS[name][0] for name in self.parameters},
            "initial": self.initial,
            "final": self.final,
            "final_loss": self.final_loss,
            "loss_history": self.loss_history,
            "iterations": self.iterations,
            "converged": self.converged,
            "stages": self.stages,
        }


def check_refinable(names: Sequence[str], source: str = "parameters") -> list[str]:
    """``names`` as a list, or InputError naming ``source`` when one cannot be refined."""
    names = check_parameter_names(names, source)
    if not names:
        raise InputError(f"{source}: name at least one parameter to refine")
    fixed = [name for name in names if name not in REFINABLE]
    if fixed:
        raise InputError(f"{source}: cannot refine {', '.join(fixed)}; refinable: {', '.join(REFINABLE)}")
    return names


def detector_shape(config: SimulationConfig) -> tuple[int, int]:
    """(slow, fast) pixel counts of the configured detector."""
    grid = resolve_pixel_grid(config.detector)
    return grid.spixels, grid.fpixels


def freeze_auto_selections(config: SimulationConfig) -> SimulationConfig:
    """``config`` with oversampling and crystal size in cells fixed at the values nanoBragg would choose.

    Also stops an HKL file's cache (Fdump.bin) being rewritten at every model evaluation.
    """
    resolved = build_setup(config, dtype=torch.float64)
    frozen = config.model_copy(deep=True)
    frozen.detector.oversample = resolved.oversample
    frozen.crystal.N = tuple(float(n) for n in resolved.N)
    frozen.crystal.xtalsize_mm = (None, None, None)
    if frozen.structure.hkl_path is not None:
        frozen.structure.dump_path = None
    return frozen


class _Objective:
    """The scaled-residual loss as a function of the offsets from the starting values, in natural steps."""

    def __init__(self, config: SimulationConfig, target: torch.Tensor, names: list[str], dtype, device) -> None:
        self.names, self.target, self.dtype, self.device = names, target, dtype, device
        start = starting_values(config, names)
        self.start = torch.tensor([start[n] for n in names], dtype=dtype, device=device)
        self.steps = torch.tensor(
            [_ANGLE_STEP_DEG if PARAMETERS[n][0] == "deg" else _RELATIVE_STEP * max(abs(start[n]), 1.0) for n in names],
            dtype=dtype,
            device=device,
        )
        self.offsets = torch.zeros_like(self.start, requires_grad=True)
        self.target_norm = (target * target).sum()

    def __call__(self, config: SimulationConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and closed-form scale at the current offsets, for the model ``config``."""
        values = self.start + self.offsets * self.steps
        model = simulate(config, params=dict(zip(self.names, values.unbind())), dtype=self.dtype, device=self.device)
        # A blank model (possible far from the start) gives scale 0 and loss 1, not 0/0.
        scale = (model * self.target).sum() / (model * model).sum().clamp_min(torch.finfo(self.dtype).tiny)
        return ((self.target - scale * model) ** 2).sum() / self.target_norm, scale

    def values(self, offsets: torch.Tensor, scale: torch.Tensor) -> dict[str, float]:
        """Parameter values (and the scale) at ``offsets``."""
        values = (self.start + offsets.detach() * self.steps).tolist()
        return {**dict(zip(self.names, values)), "scale": float(scale)}


def refine(
    config: SimulationConfig,
    target,
    parameters: Sequence[str],
    *,
    max_iter: int = 100,
    schedule: Sequence[str] = DEFAULT_SCHEDULE,
    tolerance: float = 1e-10,
    dtype: torch.dtype = torch.float64,
    device=None,
    progress: Callable[[str], None] | None = None,
) -> RefinementResult:
    """Fit ``parameters`` (names from :data:`REFINABLE`) and an overall scale so the image matches ``target``.

    ``config`` is the starting model and ``target`` an image (array or tensor) of the detector's
    shape. Each stage of ``schedule`` runs at most ``max_iter`` L-BFGS iterations and stops early
    once an iteration lowers the loss by less than ``tolerance`` times its value; ``converged`` says
    whether the last stage stopped that way. Final values are the best evaluated (lowest loss).
    ``progress`` receives one line per iteration.
    """
    names = check_refinable(parameters)
    stages = check_schedule(schedule)
    if max_iter < 1:
        raise InputError(f"max_iter: must be at least 1, got {max_iter}")
    target = torch.as_tensor(target, dtype=dtype, device=device)
    if tuple(target.shape) != detector_shape(config):
        raise InputError(
            f"target: shape {tuple(target.shape)} does not match the detector's {detector_shape(config)} (slow, fast)"
        )
    if not torch.isfinite(target).all():
        raise InputError("target: the target image has non-finite pixels (NaN or infinity)")
    if not (target * target).sum() > 0:
        raise InputError("target: the target image is all zero")
    config = freeze_auto_selections(config)
    objective = _Objective(config, target, names, dtype, device)
    say = progress or (lambda line: None)

    with torch.no_grad():
        model_loss, scale = objective(config)
    if not scale > 0:
        raise InputError(
            "the starting model image is blank or anticorrelated with the target"
            " (no structure factors? give -default_F or -hkl)"
        )
    initial = objective.values(objective.offsets, scale)
    history: list[float] = []
    summaries: list[dict[str, Any]] = []
    for number, stage in enumerate(stages, start=1):
        stage_config = config
        if STAGES[stage] is not None:
            stage_config = config.model_copy(deep=True)
            stage_config.crystal.shape = STAGES[stage]
        stage_start = objective.offsets.detach().clone()
        stage_history, converged = _run_stage(objective, stage, stage_config, max_iter, tolerance, say)
        history += stage_history
        summary = {
            "name": stage,
            "iterations": len(stage_history) - 1,
            "converged": converged,
            "loss": stage_history[-1],
        }
        if number < len(stages):
            # A coarse stage only steers: keep its result only if the real model fits better there.
            with torch.no_grad():
                stage_model_loss = float(objective(config)[0])
                summary["kept"] = stage_model_loss < float(model_loss)
                if summary["kept"]:
                    model_loss = stage_model_loss
                else:
                    objective.offsets.copy_(stage_start)
            say(f"{stage}: model loss {stage_model_loss:.6e}, {'kept' if summary['kept'] else 'discarded'}")
        summaries.append(summary)

    with torch.no_grad():
        final_loss, final_scale = objective(config)
    total = sum(summary["iterations"] for summary in summaries)
    say(f"done: loss {float(final_loss):.6e} after {total} iterations, converged: {converged}")
    return RefinementResult(
        parameters=names,
        initial=initial,
        final=objective.values(objective.offsets, final_scale),
        final_loss=float(final_loss),
        loss_history=history,
        iterations=total,
        converged=converged,
        stages=summaries,
    )


def _run_stage(
    objective: _Objective,
    name: str,
    config: SimulationConfig,
    max_iter: int,
    tolerance: float,
    say: Callable[[str], None],
) -> tuple[list[float], bool]:
    """L-BFGS iterations on the model ``config``; leaves the objective's offsets at the best point evaluated.

    Returns the loss before the first iteration followed by the best loss after each iteration, and
    whether the last iteration lowered it by less than ``tolerance`` times its value.
    """
    # One iteration per step() call; max_eval must then be given, or the line search gets no evaluations.
    optimiser = torch.optim.LBFGS(
        [objective.offsets],
        lr=1.0,
        max_iter=1,
        max_eval=1 + _LINE_SEARCH_EVALUATIONS,
        line_search_fn="strong_wolfe",
        tolerance_grad=0.0,
        tolerance_change=0.0,
        history_size=20,
    )
    with torch.no_grad():
        loss, scale = objective(config)
    best = {"loss": float(loss), "offsets": objective.offsets.detach().clone(), "scale": scale}
    say(f"{name} start: loss {best['loss']:.6e}")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss, scale = objective(config)
        loss.backward()
        if float(loss.detach()) < best["loss"]:  # NaN never compares lower
            best.update(loss=float(loss.detach()), offsets=objective.offsets.detach().clone(), scale=scale.detach())
        return loss

    history, converged = [best["loss"]], False
    while len(history) <= max_iter and not converged:
        optimiser.step(closure)  # one L-BFGS iteration: a direction, then a line search along it
        converged = history[-1] - best["loss"] <= tolerance * history[-1]
        history.append(best["loss"])
        values = objective.values(best["offsets"], best["scale"])
        say(
            f"{name} iteration {len(history) - 1}: loss {best['loss']:.6e}  "
            + "  ".join(f"{n}={v:.7g}" for n, v in values.items())
        )
    with torch.no_grad():
        objective.offsets.copy_(best["offsets"])
    return history, converged
