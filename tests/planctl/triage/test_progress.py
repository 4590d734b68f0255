"""The live view of a triage run: rich bars on a terminal, one line per chunk elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from planctl.triage.chunks import Chunk
from planctl.triage.model import ChunkResult
from planctl.triage.progress import RunProgress

CHUNKS = [Chunk("chunk_01", ["t::a", "t::b", "t::c"], 3.0), Chunk("chunk_02", ["u::d", "u::e"], 2.0)]


def _run(console: Console) -> None:
    progress = RunProgress(console)
    progress.start(5, CHUNKS, 2)
    for chunk in CHUNKS:
        progress.chunk_started(chunk)
    progress.update({"chunk_01": 3, "chunk_02": 1}, {"chunk_01": 1, "chunk_02": 0})
    done = ChunkResult(name="chunk_01", outcome="completed", tests=3, expected_s=3.0, duration_s=1.5)
    progress.chunk_finished(done, 1)
    progress.update({"chunk_01": 3, "chunk_02": 1}, {"chunk_01": 1, "chunk_02": 0})
    progress.close()


def test_a_terminal_shows_chunks_done_tests_counted_and_failures_so_far():
    out = io.StringIO()
    _run(Console(file=out, force_terminal=True, width=100, color_system=None))
    last_frame = out.getvalue().rsplit("\x1b[2K", 1)[-1]
    suite, running = last_frame.splitlines()[:2]
    assert suite.startswith("suite (1/2 chunks done)") and "4/5 1 failing" in suite
    assert running.split()[0] == "chunk_02" and "1/2" in running
    assert "chunk_01: completed, 3/3 tests, 1 failing (1.5 s)" in out.getvalue()


def test_a_log_gets_one_line_per_chunk_as_it_starts_and_ends():
    out = io.StringIO()
    _run(Console(file=out, force_terminal=False, width=100))
    assert out.getvalue().splitlines() == [
        "collected 5 tests: 2 chunks, 2 at a time",
        "chunk_01: started, 3 tests (about 3 s)",
        "chunk_02: started, 2 tests (about 2 s)",
        "chunk_01: completed, 3/3 tests, 1 failing (1.5 s)",
    ]
