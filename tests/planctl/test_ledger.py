"""Doc blocks: what planctl refuses to guess."""

from __future__ import annotations

import pytest

from tests.planctl.planctl_testkit import write


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            "<!-- planctl:bogus -->\n<!-- planctl:end -->\n",
            "docs/notes.md:2: unknown planctl block 'bogus' (known: index, tracker, status, attempts, next_actions)",
        ),
        (
            "<!-- planctl:attempts -->\n<!-- planctl:end -->\n",
            "docs/notes.md:2: planctl block 'attempts' needs a plan: <!-- planctl:attempts PLAN -->",
        ),
        (
            "<!-- planctl:status NOPE-1 -->\n<!-- planctl:end -->\n",
            "docs/notes.md:2: planctl block 'status': unknown plan 'NOPE-1'",
        ),
        (
            "<!-- planctl:index -->\nnever closed\n",
            "docs/notes.md:2: planctl block 'index' has no closing <!-- planctl:end -->",
        ),
    ],
)
def test_bad_blocks_are_one_line_errors_and_nothing_is_written(project, planctl, doc, message):
    notes = write(project / "docs" / "notes.md", "# Notes\n" + doc)
    result = planctl("ledger", root=project)
    assert (result.code, result.err) == (2, f"planctl: error: {message}\n")
    assert notes.read_text() == "# Notes\n" + doc
    assert not (project / "ledgers").exists()


def test_blocks_for_one_plan_accept_its_file_name(project, planctl):
    notes = write(project / "docs" / "notes.md", "<!-- planctl:status demo -->\n<!-- planctl:end -->\n")
    assert planctl("ledger", root=project).code == 0
    assert notes.read_text() == (
        "<!-- planctl:status demo -->\n"
        "- Status: in progress — 1 of 4 tasks closed (1 done, 0 skipped, 3 open)\n"
        "<!-- planctl:end -->\n"
    )
