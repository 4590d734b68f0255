"""The pytest side of a triage run, loaded into every pytest process with
``-p planctl.triage.pytest_plugin``.

It writes one JSON object per line to ``results.jsonl`` as the tests run (``start`` and ``finish``
of each test, every ``report`` with pytest's own summary category, failures with their exception
type, message and frames, ``collect_error``, ``session_finish``), flushed line by line, so that a
chunk that hangs or dies still tells which tests finished and which one it was in. On SIGTERM (a
chunk's timeout) it dumps every thread's stack to ``stacks.txt`` before the process ends.

Environment:
    PLANCTL_TRIAGE_OUT     folder to write into; without it the plugin does nothing
    PLANCTL_TRIAGE_SELECT  file listing the node ids this process runs, one a line: other items are
                           deselected, and files holding none of them are not even imported
With ``--collect-only`` it writes ``collected.json``: the root directory and every node id, in order.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import traceback
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from planctl.triage.signature import frame_name, is_project_file, library_roots

OUT_VARIABLE = "PLANCTL_TRIAGE_OUT"
SELECT_VARIABLE = "PLANCTL_TRIAGE_SELECT"
RESULTS = "results.jsonl"
COLLECTED = "collected.json"
STACKS = "stacks.txt"
_MESSAGE_LIMIT = 4000  # characters of an exception message kept
_FRAME_LIMIT = 60  # innermost frames kept


def pytest_configure(config: pytest.Config) -> None:
    out = os.environ.get(OUT_VARIABLE)
    if out and not config.pluginmanager.has_plugin("planctl-triage"):
        config.pluginmanager.register(_Recorder(config, Path(out)), "planctl-triage")


class _Recorder:
    def __init__(self, config: pytest.Config, out: Path) -> None:
        self.config = config
        self.rootdir = config.rootpath.resolve()
        self.libraries = library_roots()
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.stream = open(out / RESULTS, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (open for the session)
        self.stacks = open(out / STACKS, "w", encoding="utf-8")  # noqa: SIM115 (faulthandler writes to it at SIGTERM)
        faulthandler.register(signal.SIGTERM, file=self.stacks, all_threads=True, chain=True)
        self.selected: set[str] | None = None
        select = os.environ.get(SELECT_VARIABLE)
        if select:
            self.selected = {line for line in Path(select).read_text(encoding="utf-8").splitlines() if line}
            self.files = {self.rootdir / nodeid.split("::", 1)[0] for nodeid in self.selected}
            self.folders = {folder for file in self.files for folder in file.parents}

    def _write(self, **event: Any) -> None:
        self.stream.write(json.dumps(event) + "\n")

    # --- selection -------------------------------------------------------------------------------

    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        """Skip folders and test files that hold none of the selected tests (paths given on the
        command line are collected regardless, and then deselected item by item)."""
        if self.selected is None:
            return None
        path = collection_path.resolve()
        if path.is_dir():
            return None if path in self.folders or path in self.files else True
        if path.name in ("conftest.py", "__init__.py"):
            return None
        return None if path in self.files else True

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.selected is None:
            return
        selected = self.selected
        deselected = [item for item in items if item.nodeid not in selected]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if item.nodeid in selected]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not self.config.option.collectonly:
            return
        collected = {"rootdir": str(self.rootdir), "tests": [item.nodeid for item in session.items]}
        temporary = self.out / f".{COLLECTED}.tmp"
        temporary.write_text(json.dumps(collected, indent=1), encoding="utf-8")
        os.replace(temporary, self.out / COLLECTED)

    # --- results ---------------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        report = yield
        call = getattr(report, "call", None)  # attached here, removed before pytest_collectreport
        if report.failed:
            report.planctl_failure = self._failure(getattr(call, "excinfo", None), report)  # type: ignore[attr-defined]
        return report

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            failure = getattr(report, "planctl_failure", None) or self._failure(None, report)
            self._write(event="collect_error", nodeid=report.nodeid, failure=failure)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self._write(event="start", nodeid=nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.failed:
            report.planctl_failure = self._failure(call.excinfo, report)  # type: ignore[attr-defined]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        category = self.config.hook.pytest_report_teststatus(report=report, config=self.config)[0]
        event: dict[str, Any] = {
            "event": "report",
            "nodeid": report.nodeid,
            "when": report.when,
            "outcome": report.outcome,
            "category": category if isinstance(category, str) else str(category),
            "counts": bool(getattr(report, "count_towards_summary", True)),
            "duration": round(report.duration, 6),
        }
        if report.failed:
            event["failure"] = getattr(report, "planctl_failure", None) or self._failure(None, report)
        self._write(**event)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self._write(event="finish", nodeid=nodeid)

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self._write(event="session_finish", exitstatus=int(exitstatus))

    def pytest_unconfigure(self) -> None:
        faulthandler.unregister(signal.SIGTERM)
        self.stream.close()
        self.stacks.close()

    def _failure(self, excinfo: pytest.ExceptionInfo[BaseException] | None, report: Any) -> dict[str, Any]:
        """Exception type, message and frames (outermost first); from pytest's report text when
        there is no exception object (a report built elsewhere)."""
        if excinfo is None:
            crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
            text = crash.message if crash is not None else str(getattr(report, "longrepr", "") or "")
            exc_type, _, message = text.partition(": ")
            if not message or not exc_type.isidentifier():
                exc_type, message = "Error", text
            return {"type": exc_type, "message": message, "frames": []}
        error = self._project_error(excinfo.value)
        try:
            message = str(error)
        except Exception:  # a broken __str__ must not cost the record
            message = repr(error)
        frames = [
            {
                "frame": frame_name(frame.f_code.co_filename, _qualname(frame.f_code), self.rootdir),
                "line": line,
                "project": self._inside(frame.f_code.co_filename),
            }
            for frame, line in list(traceback.walk_tb(error.__traceback__))[-_FRAME_LIMIT:]
        ]
        return {"type": type(error).__name__, "message": message[:_MESSAGE_LIMIT], "frames": frames}

    def _project_error(self, error: BaseException) -> BaseException:
        """The first exception of the chain (``raise ... from``, or raised while handling another)
        that passed through project code: pytest's CollectError wraps the ImportError that
        happened in the test module, for instance."""
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if any(self._inside(f.f_code.co_filename) for f, _ in traceback.walk_tb(current.__traceback__)):
                return current
            current = current.__cause__ or current.__context__
        return error

    def _inside(self, path: str) -> bool:
        return is_project_file(path, self.rootdir, self.libraries)


def _qualname(code: Any) -> str:
    return getattr(code, "co_qualname", code.co_name)  # co_qualname: Python 3.11 and later
