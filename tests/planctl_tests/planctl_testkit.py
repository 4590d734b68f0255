"""Plans and files that planctl tests build their temporary projects from."""

from __future__ import annotations

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
