"""Attempt records: what is saved is what is loaded, also when the YAML changes behind planctl's back."""

from __future__ import annotations

from pathlib import Path

import pytest

from planctl.errors import PlanctlError
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


def test_records_read_with_an_empty_cache_equal_what_was_saved(tmp_path: Path, monkeypatch):
    """A miss is parsed by libyaml: stamps, timestamps, 'yes' and '0777' stay the strings they were."""
    path = records_path(Project(tmp_path), "run")
    attempt = sample(3)
    attempt.reason, attempt.command = "yes", "0777"
    records = Records(initiative="RUN-001", attempts=[attempt])
    save_records(path, records)
    monkeypatch.setenv("PLANCTL_CACHE_DIR", str(tmp_path / "empty-cache"))
    assert load_records(path, "RUN-001") == records


def test_records_that_are_not_yaml_are_one_error_naming_the_file(tmp_path: Path):
    path = records_path(Project(tmp_path), "run")
    path.parent.mkdir(parents=True)
    path.write_text("initiative: RUN-001\nattempts: [\n")
    with pytest.raises(PlanctlError, match=r"run\.yaml: corrupt attempt records"):
        load_records(path, "RUN-001")
