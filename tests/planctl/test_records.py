"""Attempt records: what is saved is what is loaded, also when the YAML changes behind planctl's back."""

from __future__ import annotations

from pathlib import Path

from planctl.project import Project
from planctl.records import Attempt, Check, Records, load_records, records_path, save_records
from tests.planctl.planctl_testkit import git


def sample(number: int) -> Attempt:
    return Attempt(
        number=number,
        task="D2",
        phase="D",
        stamp=f"20260101T00000{number}Z",
        outcome="passed",
        started="2026-01-01T00:00:00Z",
        checks=[Check(name="exit code", passed=True, detail="expected 0, got 0")],
        metrics={"junit": {"passed": 1}, "g.json:grads": {"count": 2, "values": [1e-06, -3.5], "labels": ["a", "b"]}},
        bundle=f"reports/x/phase_d/{number}",
    )


def test_saved_records_load_back_and_leave_nothing_else_in_the_repository(repo: Path):
    path = records_path(Project(repo), "run")
    records = Records(initiative="RUN-001", attempts=[sample(3), sample(4)])
    save_records(path, records)
    assert load_records(path, "RUN-001") == records
    assert git(repo, "status", "--porcelain", "--untracked-files=all").splitlines() == ["?? attempts/run.yaml"]


def test_records_changed_behind_planctl_s_back_are_read_afresh(tmp_path: Path):
    path = records_path(Project(tmp_path), "run")
    save_records(path, Records(initiative="RUN-001", attempts=[sample(3)]))
    assert [a.number for a in load_records(path, "RUN-001").attempts] == [3]
    # A merge or a pull rewrites the YAML; the cached parse of the old text must not answer for it.
    path.write_text(path.read_text().replace("number: 3", "number: 7"))
    assert [a.number for a in load_records(path, "RUN-001").attempts] == [7]
