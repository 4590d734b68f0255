"""Plans and files that planctl tests build their temporary projects from."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SMALL_PLAN = """\
# A small plan used across the tests.
initiative:
  id: DEMO-001
  title: Demo initiative
guard_env:
  DEMO_GUARD: '1'
context:
  goal: Show planctl at work.
  dependencies:
    - ref: docs/guide.md §2
      note: the guide
phases:
  - id: A
    title: First phase
    goal: Do the first things.
    tasks:
      - id: A1
        description: First task
        state: '[D]'   # done by hand
        guidance: Done already.
      - id: A2
        description: Second task
        state: '[ ]'
  - id: B
    title: Second phase
    requires: [A]
    tasks:
      - id: B1
        description: Needs phase A
        state: '[ ]'
      - id: B2
        description: Needs B1
        state: '[ ]'
        depends_on: [B1]
exit_criteria_summary:
  - Everything done.
"""

GUIDE = """\
# Guide
## 1. Intro
text
## 2. Usage
### 2.1 Details
## Gradient Tests
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# A repository whose plan runs real commands: pytest passing and failing, a JSON metric, a design
# packet, an artifact, a hang that a timeout or a signal stops, and a task that waits on a phase.
PY = sys.executable

RUN_PLAN = f"""\
initiative: {{id: RUN-001, title: Runs for real}}
artifacts_root: reports/run-demo
prior_attempts: 2
guard_env:
  CUDA_VISIBLE_DEVICES: '-1'
  RUN_GUARD: 'on'
phases:
  - id: A
    title: Evidence
    tasks:
      - id: A1
        description: A passing pytest
        state: '[ ]'   # comment kept
        run:
          command: {PY} -m pytest -q -p no:cacheprovider tests/test_pass.py
          expect:
            junit: {{passed: 1, failed: 0}}
      - id: A2
        description: A failing pytest
        run:
          command: {PY} -m pytest -q -p no:cacheprovider tests/test_fail.py
          expect:
            junit: {{passed: 1}}
      - id: A3
        description: Gradients as a JSON metric, a design packet and an artifact
        run:
          command: {PY} tools/probe.py --out $PLANCTL_BUNDLE/gradients.json
          timeout: 60
          artifacts: [out/extra.txt]
          render:
            - template: design.md.j2
              output: design.md
              vars: {{question: Which fixture keeps gradients alive?, recommendation: default_F=100}}
          expect:
            metrics:
              - {{file: $PLANCTL_BUNDLE/gradients.json, select: 'control.*', op: '>', value: 1e-6, abs: true}}
              - {{file: $PLANCTL_BUNDLE/gradients.json, select: zero, op: '==', value: 0}}
            files:
              - {{path: tests/test_pass.py, contains: default_F=100}}
              - {{path: $PLANCTL_BUNDLE/design.md, regex: '^## Recommendation$'}}
      - id: A4
        description: A threshold that does not hold
        run:
          command: {PY} tools/probe.py --out $PLANCTL_BUNDLE/gradients.json
          expect:
            metrics:
              - {{file: $PLANCTL_BUNDLE/gradients.json, select: control, op: '==', value: 0, quantifier: any}}
      - id: A5
        description: Hangs until stopped
        run:
          command: echo $$ > $PLANCTL_BUNDLE/child.pid; echo started; exec sleep 60
          timeout: 1
  - id: B
    title: Follow-up
    requires: [A]
    tasks:
      - id: B1
        description: Runs after phase A closes
        run: {{command: echo follow-up}}
"""

PROBE = """\
import argparse, json, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--out")
args = parser.parse_args()
print("probe: chatter on stdout that must stay out of the JSON")
pathlib.Path(args.out).write_text(json.dumps({"zero": {"a": 0.0, "b": 0}, "control": {"a": 0.25, "b": -3e-4}}))
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/extra.txt").write_text("extra artifact")
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def init_repo(root: Path, plan: str) -> Path:
    write(root / "plans" / "run.yaml", plan)
    write(root / "tests" / "test_pass.py", "def test_pass():\n    default_F=100\n    print('pass output')\n")
    write(root / "tests" / "test_fail.py", "def test_fail():\n    assert 1 == 2\n")
    write(root / "tools" / "probe.py", PROBE)
    write(root / ".gitignore", ".planctl.lock\nout/\n")
    return commit_everything(root, "initial")


def commit_everything(root: Path, message: str) -> Path:
    """Make ``root`` a git repository whose first commit holds everything in it."""
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "planctl@example.com")
    git(root, "config", "user.name", "planctl tests")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return root
