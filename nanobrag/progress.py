"""A progress bar on stderr for long renders and batches (rich), silent when it would only be noise.

The bar appears once a job has run for :data:`DELAY_S` seconds, so short runs print nothing extra,
and never when stderr is not a terminal (logs and pipes stay clean).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress, Task, TaskID

DELAY_S = 1.0


class ProgressDisplay:
    """Callable as ``progress(done, total)`` with counts of ``unit``; a context manager closes the bar."""

    def __init__(self, description: str, unit: str, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.description, self.unit = description, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.started = time.monotonic()
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None or self._task is None:
            if time.monotonic() - self.started < DELAY_S or done >= total:
                return
            self._bar, self._task = self._open(total)
        self._bar.update(self._task, completed=done, total=total)

    def _open(self, total: int) -> tuple[Progress, TaskID]:
        from rich.console import Console  # rich is imported only when a bar is shown
        from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
        from rich.text import Text

        unit, started = self.unit, self.started

        class Rate(ProgressColumn):
            def render(self, task: Task) -> Text:
                elapsed = time.monotonic() - started
                return Text(f"{task.completed / elapsed:.3g} {unit}/s" if elapsed > 0 else "")

        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.3g}/{task.total:.3g} " + unit),
            Rate(),
            TimeRemainingColumn(),
            console=Console(file=self.stream),
        )
        bar.start()
        return bar, bar.add_task(self.description, total=total)

    def __enter__(self) -> ProgressDisplay:
        self.started = time.monotonic()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
