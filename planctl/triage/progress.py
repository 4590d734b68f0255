"""The live view of a triage run: chunks done, tests counted and failures so far.

On a terminal it is a rich progress display (one bar for the suite, one per running chunk); in a
log or a pipe, one line per chunk as it starts and ends, so the output stays readable.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from planctl.triage.chunks import Chunk
from planctl.triage.model import ChunkResult


class RunProgress:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.bars: Progress | None = None
        self.suite: TaskID | None = None
        self.running: dict[str, TaskID] = {}
        self.chunks = 0
        self.done = 0

    def start(self, collected: int, chunks: list[Chunk], jobs: int) -> None:
        self.chunks = len(chunks)
        self.console.print(f"collected {collected} tests: {len(chunks)} chunks, {jobs} at a time")
        if self.console.is_terminal and chunks:
            self.bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failures]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self.bars.start()
            self.suite = self.bars.add_task(self._suite_label(), total=collected, failures="")

    def chunk_started(self, chunk: Chunk) -> None:
        if self.bars is not None:
            self.running[chunk.name] = self.bars.add_task(f"  {chunk.name}", total=len(chunk.tests), failures="")
        else:
            self.console.print(f"{chunk.name}: started, {len(chunk.tests)} tests (about {chunk.expected_s:.0f} s)")

    def update(self, finished: dict[str, int], failures: dict[str, int]) -> None:
        """Tests finished and failures so far, per chunk (running and done)."""
        if self.bars is None or self.suite is None:
            return
        total_failures = sum(failures.values())
        self.bars.update(
            self.suite,
            completed=sum(finished.values()),
            description=self._suite_label(),
            failures=f"{total_failures} failing" if total_failures else "",
        )
        for name, task in self.running.items():
            count = failures.get(name, 0)
            self.bars.update(task, completed=finished.get(name, 0), failures=f"{count} failing" if count else "")

    def chunk_finished(self, result: ChunkResult, failures: int) -> None:
        self.done += 1
        if self.bars is not None and result.name in self.running:
            self.bars.remove_task(self.running.pop(result.name))
        line = f"{result.name}: {result.outcome}, {result.tests - result.not_run}/{result.tests} tests"
        line += f", {failures} failing" if failures else ""
        line += f" ({result.duration_s:.1f} s)" if result.duration_s is not None else ""
        line += f" — {result.reason}" if result.reason and result.outcome != "completed" else ""
        self.console.print(line)

    def close(self) -> None:
        if self.bars is not None:
            self.bars.stop()
            self.bars = None

    def _suite_label(self) -> str:
        return f"suite ({self.done}/{self.chunks} chunks done)"
