"""Hostile runs on real git repositories: what a command leaves behind is read back within limits
and before the deadline, never outside the project, and every secret it prints stays out of the
bundle, the records, the ledgers and the commit."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planctl.project import Project
from planctl.records import load_records, records_path
from tests.planctl.planctl_testkit import git, init_repo, write

PLAN = """\
initiative: {id: HOSTILE-2, title: hostile runs}
guard_env: {CUDA_VISIBLE_DEVICES: '-1'}
outside_paths: [/dev]
limits: {log_bytes: 4 KiB, log_archive_bytes: 64 KiB}
phases:
  - id: A
    title: a
    tasks:
      - id: ZERO
        description: a metric file that never ends
        run:
          command: echo probing
          expect: {metrics: [{file: /dev/zero, select: x, op: '==', value: 0}]}
      - id: JUNIT
        description: junit counts that are not numbers
        run:
          command: printf '<testsuite tests="abc" failures="0"/>' > $PLANCTL_BUNDLE/junit.xml
          expect: {junit: {passed: 1}}
      - id: SLOW
        description: a check that would take minutes (catastrophic backtracking)
        run:
          command: printf 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!' > $PLANCTL_BUNDLE/slow.txt
          timeout: 3
          expect: {files: [{path: $PLANCTL_BUNDLE/slow.txt, regex: '^(a+)+$'}]}
      - id: LINK
        description: an artifact that is a link out of the project
        run:
          command: mkdir -p out && ln -sf /etc/hostname out/host.txt && echo kept > out/kept.txt
          artifacts: [out/*.txt]
      - id: LOUD
        description: 200 KiB of output
        run:
          command: seq 1 40000
"""


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", PLAN)


def attempt(root: Path, task: str):
    [found] = [a for a in load_records(records_path(Project(root), "run"), "HOSTILE-2").attempts if a.task == task]
    return found


def test_a_metric_file_that_never_ends_fails_its_check_naming_why(hostile, planctl):
    result = planctl("run", "run", "ZERO", root=hostile)
    assert result.code == 1 and "Traceback" not in result.out + result.err
    record = attempt(hostile, "ZERO")
    [check] = [c for c in record.checks if not c.passed]
    assert (record.outcome, check.detail) == ("failed", "/dev/zero is not a regular file")


def test_junit_counts_that_are_not_numbers_fail_the_attempt(hostile, planctl):
    result = planctl("run", "run", "JUNIT", root=hostile)
    assert result.code == 1 and "Traceback" not in result.out + result.err
    record = attempt(hostile, "JUNIT")
    [check] = [c for c in record.checks if not c.passed]
    assert record.outcome == "failed" and check.name == "junit counts"
    assert check.detail.endswith("junit.xml: testsuite tests='abc' is not a whole number")


def test_the_deadline_covers_the_checks(hostile, planctl):
    start = time.monotonic()
    result = planctl("run", "run", "SLOW", root=hostile)
    took = time.monotonic() - start
    assert result.code == 1
    record = attempt(hostile, "SLOW")
    assert (record.outcome, record.reason) == (
        "interrupted",
        "timeout after 3 s (templates, artifacts and checks unfinished)",
    )
    assert took < 60  # the regex alone would run for many minutes
    assert git(hostile, "log", "-1", "--format=%s").strip() == "planctl: HOSTILE-2 SLOW attempt #1 interrupted"


def test_an_artifact_linking_out_of_the_project_is_not_copied(hostile, planctl):
    result = planctl("run", "run", "LINK", root=hostile)
    assert result.code == 1
    record = attempt(hostile, "LINK")
    [check] = [c for c in record.checks if not c.passed]
    assert "resolves to /etc/hostname, outside the project" in check.detail
    bundle = hostile / record.bundle
    assert (bundle / "artifacts" / "out" / "kept.txt").read_text() == "kept\n"
    assert not (bundle / "artifacts" / "out" / "host.txt").exists()


def test_a_long_log_keeps_head_and_tail_and_a_compressed_copy(hostile, planctl):
    assert planctl("run", "run", "LOUD", root=hostile).code == 0
    bundle = hostile / attempt(hostile, "LOUD").bundle
    log = (bundle / "output.log").read_text()
    assert log.startswith("1\n2\n3\n") and log.endswith("39999\n40000\n")
    assert len(log) < 5000
    assert "only its head and tail are kept" in log and "limits.log_bytes (4 KiB)" in log
    archived = gzip.decompress((bundle / "output.log.gz").read_bytes()).decode()
    assert archived.startswith("1\n2\n") and len(archived.encode()) < 64 * 1024 + 500
    assert archived.endswith("more bytes were not kept]\n") and "limits.log_archive_bytes (64 KiB)" in archived
    committed = git(hostile, "show", "--name-only", "--format=", "HEAD").split()
    assert f"{attempt(hostile, 'LOUD').bundle}/output.log.gz" in committed


# A planted secret of every kind: inherited from planctl's environment, set by the plan, and a
# token shape that only the command prints.
GITHUB_TOKEN = "ghp_" + "Zq8Lw3Nd5Rt7Yp1Vx9Kc2Hf4Jm6Bs0Ga7Ee"
AWS_KEY = "AKIA" + "Q7WERTYUIOPASDF2"
DB_DSN = "postgres://app:hunter2hunter2@db/prod"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
SECRETS = [GITHUB_TOKEN, AWS_KEY, "hunter2hunter2", "b3BlbnNzaC1rZXktdjEAAAAA"]
TEST_PRINTS = """\
import os
def test_prints_the_token():
    print("token in a test:", os.environ["GITHUB_TOKEN"])
"""
SECRET_PLAN = f"""\
initiative: {{id: SECRET-1, title: secrets}}
guard_env: {{CUDA_VISIBLE_DEVICES: '-1'}}
redact: {{names: ['*_DSN']}}
phases:
  - id: A
    title: a
    tasks:
      - id: A1
        description: prints secrets everywhere it can
        run:
          command: >-
            echo "token: $GITHUB_TOKEN" && printf 'aws: %s%s\\n' {AWS_KEY[:4]} {AWS_KEY[4:]} && echo "dsn: $DB_DSN" &&
            printf '%s\\n' "$SSH_KEY" &&
            echo "{{\\"t\\": \\"$GITHUB_TOKEN\\"}}" > $PLANCTL_BUNDLE/leak.json &&
            mkdir -p out && echo "$GITHUB_TOKEN" > out/leak.txt &&
            {sys.executable} -m pytest -q -p no:cacheprovider -o junit_logging=all tests/test_prints.py
          artifacts: [out/leak.txt]
          expect: {{junit: {{passed: 1}}}}
"""


def test_a_planted_secret_appears_nowhere_planctl_writes(tmp_path):
    root = init_repo(tmp_path / "repo", SECRET_PLAN)
    write(root / "tests" / "test_prints.py", TEST_PRINTS)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a test that prints the token")
    env = {**os.environ, "GITHUB_TOKEN": GITHUB_TOKEN, "SSH_KEY": PRIVATE_KEY, "DB_DSN": DB_DSN}
    run = subprocess.run(
        [sys.executable, "-m", "planctl", "--root", str(root), "run", "run", "A1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "token: [REDACTED:GITHUB_TOKEN]" in run.stdout and "aws: [REDACTED:aws-access-key-id]" in run.stdout
    record = load_records(records_path(Project(root), "run"), "SECRET-1").attempts[0]
    bundle = root / record.bundle
    assert "[REDACTED:DB_DSN]" in (bundle / "output.log").read_text()
    assert "[REDACTED:private-key]" in (bundle / "output.log").read_text()
    assert "[REDACTED:GITHUB_TOKEN]" in (bundle / "junit.xml").read_text()  # pytest copied the output there

    # Everything planctl wrote (the command's own out/leak.txt is the command's business) ...
    folders = ("reports", "attempts", "ledgers", "docs", "plans")
    written = [p.read_bytes() for folder in folders for p in (root / folder).rglob("*") if p.is_file()]
    assert any(b"[REDACTED:GITHUB_TOKEN]" in data for data in written)
    # ... every object in the repository, and every commit message.
    objects = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"], cwd=root, capture_output=True, check=True
    ).stdout
    messages = git(root, "log", "--all", "--format=%B").encode()
    for secret in SECRETS:
        for blob in [*written, objects, messages]:
            assert secret.encode() not in blob, secret
    for path in root.rglob("*.gz"):
        assert all(s.encode() not in gzip.decompress(path.read_bytes()) for s in SECRETS)
