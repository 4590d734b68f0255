"""Splitting a suite into chunks: by file, or balanced by recorded durations."""

from __future__ import annotations

from planctl.triage.chunks import chunk_name, plan_chunks

TESTS = [
    "tests/test_a.py::test_1",
    "tests/test_a.py::test_2",
    "tests/test_b.py::test_1",
    "tests/test_b.py::test_2",
    "tests/test_b.py::test_3",
    "tests/test_c.py::test_1",
    "tests/sub/test_d.py::T::test_1[x]",
]


def test_by_file_keeps_collection_order():
    chunks = plan_chunks(TESTS, {}, count=2, split="file")
    assert [c.tests for c in chunks] == [TESTS[:2], TESTS[2:5], TESTS[5:6], TESTS[6:]]
    assert [c.name for c in chunks] == ["chunk_01", "chunk_02", "chunk_03", "chunk_04"]


def test_without_history_every_test_counts_the_same():
    chunks = plan_chunks(TESTS, {}, count=3, split="balanced")
    # A chunk's share is 7/3 s: file b (3 s) is cut after two tests; the pieces go longest first
    # to the least loaded chunk, and each chunk runs in collection order.
    assert [c.tests for c in chunks] == [TESTS[0:2] + TESTS[6:7], TESTS[2:4], TESTS[4:6]]
    assert [c.expected_s for c in chunks] == [3.0, 2.0, 2.0]


def test_recorded_durations_balance_and_a_slow_test_gets_a_chunk_of_its_own():
    durations = dict.fromkeys(TESTS, 1.0) | {"tests/test_b.py::test_2": 30.0}
    chunks = plan_chunks(TESTS, durations, count=3, split="balanced")
    [alone] = [c for c in chunks if "tests/test_b.py::test_2" in c.tests]
    assert alone.tests == ["tests/test_b.py::test_2"] and alone.expected_s == 30.0
    assert sum(len(c.tests) for c in chunks) == len(TESTS)
    # A test never timed counts as the median of those that were.
    unknown = plan_chunks([*TESTS, "tests/test_e.py::new"], durations, count=1, split="balanced")
    assert unknown[0].expected_s == 37.0


def test_never_more_chunks_than_tests_and_none_for_no_tests():
    assert len(plan_chunks(TESTS[:2], {}, count=8, split="balanced")) == 2
    assert plan_chunks([], {}, count=4, split="balanced") == []
    assert chunk_name(0, 120) == "chunk_001"
