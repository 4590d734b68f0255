"""References from a plan to repository files: ``path[:start[-end]] [§section, ...]``.

Examples: ``tests/test_gradients.py:360-444``, ``arch.md §15``, ``docs/testing.md §4.1``,
``docs/checklist.md §"Gradient Tests"``, ``specs/core.md §3–4`` (a range: both ends are checked).

A section is either a number (``15``, ``4.1``), matched against numbered markdown headings such as
``## 15. Gradient guardrails`` or ``### 4.1 Tier-2 gradients``, a numeric range, or text, matched
against any heading that contains it (case-insensitive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# One section item after a "§" or "§§": a quoted title, a number or numeric range, or a bare word.
_NUMBER = r"\d+(?:\.\d+)*"
_RANGE = re.compile(rf"^({_NUMBER})\s*[–-]\s*({_NUMBER})$")
SECTION_TOKEN = re.compile(
    rf'§{{1,2}}\s*(?:"(?P<quoted>[^"]+)"'
    rf"|(?P<numbers>{_NUMBER}(?:\s*[–-]\s*{_NUMBER})?(?:\s*,\s*{_NUMBER}(?:\s*[–-]\s*{_NUMBER})?)*)"
    rf"|(?P<word>[A-Za-z](?:[\w.\-]*\w)?))"
)
_LINES = re.compile(r"^(?P<path>.+?):(?P<start>\d+)(?:[–-](?P<end>\d+))?$")
_NUMBERED_HEADING = re.compile(rf"^§?\s*({_NUMBER})\.?(?:\s|$)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")


def _is_numeric(section: str) -> bool:
    return re.fullmatch(_NUMBER, section) is not None or _RANGE.match(section) is not None


def find_sections(text: str) -> tuple[list[str], str]:
    """Section items found in ``text`` and what is left once they are removed."""
    sections: list[str] = []
    for match in SECTION_TOKEN.finditer(text):
        if match["quoted"] is not None:
            sections.append(match["quoted"].strip())
        elif match["numbers"] is not None:
            sections.extend(part.strip() for part in match["numbers"].split(","))
        else:
            sections.append(match["word"])
    return sections, SECTION_TOKEN.sub("", text)


@dataclass(frozen=True)
class Reference:
    path: str
    lines: tuple[int, int] | None = None
    sections: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Reference:
        text = text.strip()
        if not text:
            raise ValueError("empty reference")
        head, _, rest = text.partition(" ")
        lines = None
        match = _LINES.match(head)
        if match:
            start = int(match["start"])
            end = int(match["end"] or start)
            if not 1 <= start <= end:
                raise ValueError(f"bad line range in reference '{text}'")
            head, lines = match["path"], (start, end)
        sections, leftover = find_sections(rest)
        if re.sub(r"[\s,]|\band\b", "", leftover):
            raise ValueError(f"cannot read reference '{text}': expected 'path[:start-end] [§section, ...]'")
        return cls(head, lines, tuple(sections))

    def __str__(self) -> str:
        text = self.path
        if self.lines:
            start, end = self.lines
            text += f":{start}" if start == end else f":{start}-{end}"
        if self.sections:
            text += " " + ", ".join(f"§{s}" if _is_numeric(s) else f'§"{s}"' for s in self.sections)
        return text


def check_reference(root: Path, ref: Reference) -> list[str]:
    """Problems with ``ref`` in the repository at ``root`` (empty when it resolves)."""
    target = root / ref.path
    if not target.exists():
        return [f"{ref.path} does not exist"]
    if not (ref.lines or ref.sections):
        return []
    if target.is_dir():
        return [f"{ref.path} is a directory; line ranges and sections need a file"]
    lines = _read_lines(target)
    problems = []
    if ref.lines and ref.lines[1] > len(lines):
        problems.append(f"{ref.path} has {len(lines)} lines; range {ref.lines[0]}-{ref.lines[1]} is past its end")
    headings = [m[1] for m in map(_HEADING.match, lines) if m]
    for section in ref.sections:
        range_match = _RANGE.match(section)
        wanted = [range_match[1], range_match[2]] if range_match else [section]
        for item in wanted:
            if not any(_heading_matches(h, item) for h in headings):
                problems.append(f"section §{item} not found among the headings of {ref.path}")
    return problems


def _heading_matches(heading: str, section: str) -> bool:
    if re.fullmatch(_NUMBER, section):
        numbered = _NUMBERED_HEADING.match(heading)
        return numbered is not None and numbered[1] == section
    return section.casefold() in heading.casefold()


@lru_cache(maxsize=256)
def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()
