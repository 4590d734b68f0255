"""Generated blocks inside markdown files: a line ``<!-- planctl:NAME [PLAN] -->``, the block's body,
and a line ``<!-- planctl:end -->``. Finding them is plain text work (no templates): the ledger fills
them, and input hashing blanks them, since planctl rewrites them after every attempt. Markers inside
fenced code blocks are left alone, so docs can show them."""

from __future__ import annotations

import re
from collections.abc import Callable

from planctl.errors import PlanctlError

_BLOCK_OPEN = re.compile(r"^<!-- planctl:([\w-]+)(?:\s+(\S+))?\s*-->$")
_BLOCK_END = "<!-- planctl:end -->"


def refresh_blocks(text: str, render: Callable[[str, str | None, str], str], where: str) -> str:
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    in_fence = False
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        out.append(lines[i])
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
        opened = None if in_fence else _BLOCK_OPEN.match(stripped)
        if opened and opened[1] not in ("end", "generated"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == _BLOCK_END), None)
            if end is None:
                raise PlanctlError(f"{where}:{i + 1}: planctl block '{opened[1]}' has no closing {_BLOCK_END}")
            body = render(opened[1], opened[2], f"{where}:{i + 1}")
            out.append(body if body.endswith("\n") or not body else body + "\n")
            out.append(lines[end])
            i = end
        i += 1
    return "".join(out)
