"""Round-trip YAML: read plans keeping comments, key order, quoting and indentation; write them back.

ruamel.yaml keeps comments, key order and scalar styles. Indentation is a dumper setting, so it is
guessed from each file and reused when that file is written back.

Reading a plan needs only its plain data, and that is parsed with libyaml through PyYAML instead
(``fast_load``), some ten times faster than ruamel's pure-Python parser, with YAML 1.2 scalars as
ruamel reads them (``yes`` and ``0777`` are a string and 777, not True and 511). What libyaml does
not read cleanly (merge keys, complex keys, errors) is read by ruamel, whose messages locate the
problem. The round-trip document is parsed only to edit a plan.
"""

from __future__ import annotations

import io
import re
from typing import Any

import yaml as pyyaml
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


_LOADER_BASE = getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)
_BOOL, _INT, _FLOAT = (f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float"))


class _Yaml12Loader(_LOADER_BASE):  # type: ignore[misc,valid-type]
    """libyaml with YAML 1.2 core-schema scalars, refusing duplicate keys (as ruamel does)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        if len(set(map(repr, keys))) != len(keys):
            raise pyyaml.constructor.ConstructorError(None, None, "duplicate key", node.start_mark)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Any) -> int:
        text = self.construct_scalar(node).replace("_", "")
        digits = text.lstrip("+-")
        if digits.startswith(("0b", "0o", "0x")):
            sign = -1 if text.startswith("-") else 1
            return sign * int(digits[2:], {"b": 2, "o": 8, "x": 16}[digits[1]])
        return int(text, 10)


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in pyyaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Yaml12Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9][0-9_]*|[-+]?0b[01_]+|[-+]?0o[0-7_]+|[-+]?0x[0-9a-fA-F_]+)$"), list("-+0123456789")
)
_Yaml12Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Yaml12Loader.add_constructor(_INT, _Yaml12Loader.construct_yaml_int)


def fast_load(text: str) -> tuple[Any, Any] | None:
    """(data, root node) read with libyaml, or None when anything is off: the caller then reads
    the text with ruamel, which says what and where. Aliases are shared, not copied: callers bound
    what the data expands to (planctl.parsecache.plain)."""
    loader = _Yaml12Loader(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    except (pyyaml.YAMLError, ValueError, TypeError, RecursionError):
        return None
    finally:
        loader.dispose()


def compose(text: str) -> Any:
    """libyaml's node tree of ``text`` (parsed in C, no values built), for ``node_position``; None
    when libyaml does not read the text."""
    loader = _Yaml12Loader(text)
    try:
        return loader.get_single_node()
    except pyyaml.YAMLError:
        return None
    finally:
        loader.dispose()


def node_position(node: Any, loc: tuple[Any, ...], at_key: bool = False) -> tuple[int, int]:
    """``position`` for a document read by ``fast_load``: 1-based line and column of the value at
    ``loc`` (of its key with ``at_key``), or of the deepest node on that path that exists."""
    if node is None:
        return 1, 1
    mark = node.start_mark
    for depth, key in enumerate(loc):
        last = depth == len(loc) - 1
        if isinstance(node, pyyaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if getattr(k, "value", None) == key), None)
            if pair is None:
                continue
            mark = (pair[0] if last and at_key else pair[1]).start_mark
            node = pair[1]
        elif isinstance(node, pyyaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            node = node.value[key]
            mark = node.start_mark
    return mark.line + 1, mark.column + 1


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
