"""Round-trip YAML: read plans keeping comments, key order, quoting and indentation; write them back.

ruamel.yaml keeps comments, key order and scalar styles. Indentation is a dumper setting, so it is
guessed from each file and reused when that file is written back.
"""

from __future__ import annotations

import io
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

DEFAULT_INDENT = (2, 4, 2)  # mapping, sequence, offset: "key:\n  - item"
_FOLD_WIDTH = 88
_TRAILING_COMMENT = re.compile(r"\s+#.*$")


def make_yaml(indent: tuple[int, int, int] = DEFAULT_INDENT) -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    # Never re-wrap plain scalars: long lines stay long, hand-folded block scalars keep their folds.
    yaml.width = 4096
    mapping, sequence, offset = indent
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def guess_indent(text: str) -> tuple[int, int, int]:
    """The (mapping, sequence, offset) indentation a YAML text uses, defaulting per part."""
    mapping = sequence = offset = None
    opener: int | None = None  # indentation of the last "key:" line that opens a block
    for line in text.splitlines():
        content = _TRAILING_COMMENT.sub("", line).rstrip()
        stripped = content.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(content) - len(stripped)
        if opener is not None:
            if stripped.startswith("- ") and offset is None:
                offset = indent - opener
                item = stripped[2:]
                sequence = offset + 2 + len(item) - len(item.lstrip(" "))
            elif not stripped.startswith("- ") and mapping is None and indent > opener:
                mapping = indent - opener
        opener = indent if stripped.endswith(":") and not stripped.startswith("- ") else None
        if mapping is not None and offset is not None:
            break
    default_mapping, default_sequence, default_offset = DEFAULT_INDENT
    return (
        mapping or default_mapping,
        sequence if sequence is not None else default_sequence,
        offset if offset is not None else default_offset,
    )


def dump(document: Any, yaml: YAML) -> str:
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    return buffer.getvalue()


def position(document: Any, loc: tuple[Any, ...], at_key: bool = False) -> tuple[int, int]:
    """1-based line and column of the value at ``loc`` (a pydantic error location), of its key
    with ``at_key``, or of the deepest node on that path that exists."""
    node = document
    line, col = 1, 1
    if isinstance(node, (CommentedMap, CommentedSeq)) and node.lc.line is not None:
        line, col = node.lc.line + 1, node.lc.col + 1
    for depth, key in enumerate(loc):
        last = depth == len(loc) - 1
        if isinstance(node, CommentedMap) and key in node:
            row, column = node.lc.key(key) if last and at_key else node.lc.value(key)
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            row, column = node.lc.item(key)
            node = node[key]
        else:
            continue  # a missing key or a validator's own label: keep the enclosing position
        line, col = row + 1, column + 1
    return line, col


def text_scalar(text: str) -> str:
    """``text`` in the scalar style that reads best: folded block for long prose, literal block
    for multi-line text, plain otherwise. Fold points are stored so rewrites keep them."""
    if "\n" in text:
        return LiteralScalarString(text)
    if len(text) <= _FOLD_WIDTH or text != text.strip():
        return text
    folds, start = [], 0
    while len(text) - start > _FOLD_WIDTH:
        # Folding happens only at a single space; double spaces would not survive a fold.
        cut = next(
            (
                i
                for i in range(start + _FOLD_WIDTH, start, -1)
                if text[i] == " " and text[i - 1] != " " and text[i + 1] != " "
            ),
            None,
        )
        if cut is None:
            break
        folds.append(cut)
        start = cut + 1
    if not folds:
        return text
    scalar = FoldedScalarString(text)
    scalar.fold_pos = folds  # type: ignore[attr-defined]
    return scalar
