"""The progress display: silent for short jobs and non-terminals, a bar otherwise."""

from __future__ import annotations

import io

from nanobrag import progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_output_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    stream = io.StringIO()
    with progress.ProgressDisplay("rendering", "pixel-steps", stream=stream) as bar:
        bar(5, 10)
        bar(10, 10)
    assert stream.getvalue() == ""


def test_no_output_for_jobs_shorter_than_the_delay(monkeypatch):
    monkeypatch.setattr(progress, "DELAY_S", 3600.0)
    stream = FakeTerminal()
    with progress.ProgressDisplay("rendering", "pixel-steps", stream=stream) as bar:
        bar(5, 10)
    assert stream.getvalue() == ""


def test_a_bar_with_counts_and_rate_on_a_terminal(monkeypatch):
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    stream = FakeTerminal()
    with progress.ProgressDisplay("rendering", "pixel-steps", stream=stream) as bar:
        bar(5_000_000, 20_000_000)
        bar(20_000_000, 20_000_000)
    shown = stream.getvalue()
    assert "rendering" in shown and "2e+07 pixel-steps" in shown and "pixel-steps/s" in shown


def test_disabled_display_prints_nothing(monkeypatch):
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    stream = FakeTerminal()
    with progress.ProgressDisplay("rendering", "pixel-steps", enabled=False, stream=stream) as bar:
        bar(5, 10)
    assert stream.getvalue() == ""
