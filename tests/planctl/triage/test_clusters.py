"""The cluster registry across runs: ids, events, partial runs, historical clusters."""

from __future__ import annotations

from planctl.records import Attempt, Records
from planctl.schema import HistoricalCluster
from planctl.triage.clusters import Findings, comparison, update
from planctl.triage.results import Failure

COLLECTED = ["t.py::a", "t.py::b", "t.py::c", "u.py::d"]
HISTORICAL = [HistoricalCluster(id="C19", tests=["u.py::d"], origin="elsewhere, 2025")]


def attempt(number: int) -> Attempt:
    return Attempt(
        number=number, kind="triage", task="triage", phase="triage", stamp=f"S{number}", outcome="failed",
        started="now", bundle=f"reports/triage/S{number}",
    )  # fmt: skip


def failure(test: str, message: str = "boom 1", frame: str = "lib.py::f") -> Failure:
    return Failure(test, "call", "ValueError", message, [{"frame": frame, "line": 1, "project": True}], "chunk_01")


def run(records, number, failures, passed, ran=None, collected=COLLECTED):
    """Record run #``number``: these failures, these tests passing (of those in ``ran``)."""
    outcomes = dict.fromkeys(passed, "passed") | {f.test: "failed" for f in failures}
    findings = Findings(
        failures=failures,
        outcomes={t: o for t, o in outcomes.items() if ran is None or t in ran},
        collected=collected,
        evidence={t: f"reports/triage/S{number}/chunks/chunk_01/summary.md" for t in COLLECTED},
        run_summary=f"reports/triage/S{number}/summary.md",
    )
    ids = update(records, HISTORICAL, findings, attempt(number))
    return ids, comparison(records.clusters, number)


def test_ids_follow_the_historical_ones_and_last_across_runs():
    records = Records(initiative="X")
    # Two parameters of one cause, numbers differing: one cluster. The historical C19's test passes.
    ids, changes = run(
        records, 1, [failure("t.py::a", "boom 1"), failure("t.py::b", "boom 22")], ["t.py::c", "u.py::d"]
    )
    assert list(ids.values()) == ["C20"]
    assert changes == {"new": ["C20"], "persisting": [], "returning": [], "resolved": ["C19"], "unverified": []}
    assert records.clusters[0].id == "C19" and records.clusters[0].origin == "elsewhere, 2025"

    # b passes, a still fails: persisting, with b marked passing.
    ids, changes = run(records, 2, [failure("t.py::a", "boom 3")], ["t.py::b", "t.py::c", "u.py::d"])
    c20 = records.clusters[1]
    assert changes["persisting"] == ["C20"] and (c20.tests, c20.passing) == (["t.py::a", "t.py::b"], ["t.py::b"])

    # a does not run (a partial run): not seen, but not resolved either.
    _, changes = run(records, 3, [], ["t.py::b", "t.py::c"], ran=["t.py::b", "t.py::c"])
    assert changes["unverified"] == ["C20"] and c20.status == "open"

    # a passes: every test of C20 has passed since it opened, so it is resolved.
    _, changes = run(records, 4, [], COLLECTED)
    assert changes["resolved"] == ["C20"] and c20.status == "resolved"

    # The same signature again: the same id returns; a different one gets the next id.
    ids, changes = run(records, 5, [failure("t.py::c", "boom 9"), failure("t.py::a", "other", "lib.py::g")], [])
    assert changes["returning"] == ["C20"] and changes["new"] == ["C21"]
    assert c20.tests == ["t.py::c"] and c20.passing == []
    assert [e.event for e in c20.history] == ["new", "persisting", "resolved", "returning"]
    assert c20.history[-1].evidence == ["reports/triage/S5/chunks/chunk_01/summary.md"]


def test_a_test_failing_for_another_reason_keeps_its_old_cluster_open():
    records = Records(initiative="X")
    run(records, 1, [failure("t.py::a")], COLLECTED[1:])
    _, changes = run(records, 2, [failure("t.py::a", "different", "lib.py::h")], COLLECTED[1:])
    assert changes["new"] == ["C21"] and changes["unverified"] == ["C20"]


def test_a_collection_error_resolves_once_the_module_collects():
    records = Records(initiative="X")
    broken = Failure("v.py", "collect", "ImportError", "no module x", [], None)
    run(records, 1, [broken], COLLECTED)
    assert records.clusters[-1].tests == ["v.py"]
    _, changes = run(records, 2, [], COLLECTED, collected=[*COLLECTED, "v.py::t"])
    assert changes["resolved"] == ["C20"]
