"""Thread pools sized to what the process may use: affinity mask and cgroup CPU quota."""

from __future__ import annotations

import os

import pytest
import torch

from nanobrag import threads


@pytest.fixture
def cgroup(tmp_path, monkeypatch):
    """Point the cgroup v2 quota file at a temporary file (and hide the v1 files)."""
    v2 = tmp_path / "cpu.max"
    monkeypatch.setattr(threads, "_CGROUP_V2", v2)
    monkeypatch.setattr(threads, "_CGROUP_V1", (tmp_path / "no_quota", tmp_path / "no_period"))
    return v2


def test_quota_caps_the_affinity_mask(cgroup, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    cgroup.write_text("250000 100000\n")  # 2.5 cores
    assert threads.available_cores() == 3
    cgroup.write_text("max 100000\n")
    assert threads.available_cores() == 8


def test_affinity_mask_limits_cores(cgroup, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    assert threads.available_cores() == 1


def test_cgroup_v1_quota(tmp_path, monkeypatch):
    quota, period = tmp_path / "quota", tmp_path / "period"
    quota.write_text("100000\n")
    period.write_text("100000\n")
    monkeypatch.setattr(threads, "_CGROUP_V2", tmp_path / "absent")
    monkeypatch.setattr(threads, "_CGROUP_V1", (quota, period))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert threads.available_cores() == 1
    quota.write_text("-1\n")  # unlimited
    assert threads.available_cores() == 4


def test_configure_threads_follows_request_then_environment(cgroup, monkeypatch):
    before = torch.get_num_threads()
    try:
        assert threads.configure_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert threads.configure_threads() == 2
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5})
        assert threads.configure_threads() == 1
    finally:
        torch.set_num_threads(before)
