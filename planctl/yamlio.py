"""Round-trip YAML: read plans keeping comments, key order, quoting and indentation; write them back.

ruamel.yaml keeps comments, key order and scalar styles. Indentation is a dumper setting, so it is
guessed from each file and reused when that file is written back.

ruamel.yaml is imported by the functions that use it: commands that only read plans never need it,
since a plan's data is read by libyaml (planctl.plainyaml) or from the parse cache.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ruamel.yaml import YAML

DEFAULT_INDENT = (2, 4, 2)  # mapping, sequence, offset: "key:\n  - item"
_FOLD_WIDTH = 88
_TRAILING_COMMENT = re.compile(r"\s+#.*$")


class NotYaml(ValueError):
    """Text that is not YAML, with where and why."""

    def __init__(self, line: int, col: int, reason: str) -> None:
        super().__init__(reason)
        self.line, self.col, self.reason = line, col, reason


def make_yaml(indent: tuple[int, int, int] = DEFAULT_INDENT) -> YAML:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    # Never re-wrap plain scalars: long lines stay long, hand-folded block scalars keep their folds.
    yaml.width = 4096
    mapping, sequence, offset = indent
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def load_round_trip(text: str) -> Any:
    """The round-trip document of ``text``; :class:`NotYaml` with the line and column of the
    problem when it is not YAML."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return make_yaml(guess_indent(text)).load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise NotYaml(line, col, one_line(err.problem or err.context)) from None
    except (YAMLError, ValueError, TypeError, RecursionError) as err:
        # The constructors reject some values outside the marked-error path (a bad !!timestamp, say),
        # and very deep nesting exhausts the stack.
        raise NotYaml(1, 1, "nested too deeply" if isinstance(err, RecursionError) else one_line(err)) from None


def one_line(text: object) -> str:
    """``text`` with every run of white space (newlines included) made one space."""
    return " ".join(str(text).split())


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
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

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
    from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

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
    scalar.fold_pos = folds
    return scalar


def styled(value: Any) -> Any:
    """A round-trip document of plain data, each string in the style that reads best (``text_scalar``)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict):
        return CommentedMap((k, styled(v)) for k, v in value.items())
    if isinstance(value, list):
        return CommentedSeq(styled(v) for v in value)
    if isinstance(value, str):
        return text_scalar(value)
    return value
