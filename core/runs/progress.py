"""Where a run is, from the ends of its metrics.jsonl: the one source of progress for every view of a run
(the sidebar, the live view, the runs table, the race), cheap enough to ask every second."""

import math
from dataclasses import dataclass
from pathlib import Path

from core.base.runfiles import LINE_MAX_BYTES, is_number, last_row, parse_row
from core.runs.store import RunInfo
from core.training.race import RaceConfig

ETA_MIN_STEPS = 20  # no time estimate before this many steps are timed: the first ones include warm-up
ETA_MIN_S = 3.0  # nor before this many seconds of them
QUEUED = "queued"  # a run's status until its worker takes it (core.runs.store.ACTIVE)


@dataclass(frozen=True)
class Progress:
    epoch: int  # the epoch being trained, counting from 1
    epochs: int | None  # how many the run trains
    step: int
    total_steps: int | None
    samples_per_s: float | None
    eta_s: float | None  # seconds left at the speed so far; None until enough steps are timed
    queued: bool = False  # waiting for its worker to take it: nothing trains yet
    waiting: str = ""  # a run for a Ray cluster that no machine has taken yet: why (core.runs.remote)

    @property
    def fraction(self) -> float:
        return min(self.step / self.total_steps, 1.0) if self.total_steps else 0.0

    @property
    def label(self) -> str:
        """ "epoch 3/5 · 47%": the sidebar, the live view and the runs table all say it this way."""
        if self.queued:
            return "queued, waiting for its worker"
        if self.waiting:
            return "waiting for a machine of the cluster"
        return f"epoch {self.epoch}/{self.epochs or '?'} · {self.fraction:.0%}"


def progress(run: RunInfo) -> Progress:
    """Where a run is, from the ends of metrics.jsonl: cheap enough to call every second.

    The one source of progress for every view of a run, so they never disagree: the sidebar, the Train
    page's live view, the runs table, the Predict page and the Optimization page's race. A race has no
    epochs: its steps are those of each contender.
    """
    path = run.dir / "metrics.jsonl"
    last = last_row(path) or {}
    step = _finite(last.get("step"), run.step)
    speed = _finite(last.get("samples_per_s"), None)
    epoch = _finite(last.get("epoch"), run.epoch if last else max(run.epoch, 1))
    race = isinstance(run.config, RaceConfig)
    total = run.total_steps or (run.config.steps if race else None)
    epochs = None if race or run.config is None else run.config.epochs
    if last.get("kind") == "epoch" and run.active and epochs and epoch < epochs:
        epoch += 1  # that epoch is scored: the next one is training
    eta = _eta(_first_row(path), last, total) if run.active else None
    return Progress(int(epoch), epochs, int(step), total, speed, eta, queued=run.status == QUEUED,
                    waiting=run.cluster_wait)  # fmt: skip


def _first_row(path: Path) -> dict | None:
    """The first row of a metrics.jsonl (None while it is still being written), reading one line."""
    try:
        with open(path, "rb") as f:
            line = f.readline(LINE_MAX_BYTES)
    except FileNotFoundError:
        return None
    return parse_row(line) if line.endswith(b"\n") else None


def _eta(first: dict | None, last: dict, total_steps: int | None) -> float | None:
    """Seconds left at the average pace between the first logged row and the last (scoring included).

    None until ETA_MIN_STEPS steps over ETA_MIN_S seconds are timed: the first rows carry the warm-up,
    and an estimate from them was minutes for a run that ended seconds later.
    """
    if not (first and total_steps):
        return None
    steps = _finite(last.get("step"), 0) - _finite(first.get("step"), 0)
    seconds = _finite(last.get("time"), 0.0) - _finite(first.get("time"), 0.0)
    if steps < ETA_MIN_STEPS or seconds < ETA_MIN_S:
        return None
    return max(total_steps - last["step"], 0) * seconds / steps


def _finite(value, default):
    return value if is_number(value) and math.isfinite(value) else default
