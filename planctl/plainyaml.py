"""The plain data of a YAML text, read by libyaml (through PyYAML) the way ruamel.yaml reads it.

Reading a plan needs only its data (dicts, lists, scalars). libyaml parses it in C, about ten times
faster than ruamel's pure-Python parser, and this loader gives YAML 1.2 core-schema scalars as
ruamel reads them (``yes`` and ``0777`` are a string and 777, not True and 511), refusing duplicate
keys as ruamel does. Text whose reading could differ (directives, explicit tags, tabs) or that libyaml
does not read cleanly (merge keys, complex keys, errors) is left to ruamel (planctl.yamlio), whose
messages locate the problem. Positions of values come from libyaml's node tree (``compose``), so
that a problem in a valid file is located without ruamel either.
"""

from __future__ import annotations

import re
from typing import Any

import yaml as pyyaml

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


# A directive ("%YAML 1.1" switches ruamel to YAML 1.1 scalars) or an explicit tag at the start of
# a node ("key: !!str 12": ruamel keeps such values tagged where PyYAML converts them). Either makes
# libyaml's reading differ from ruamel's, so such text is left to ruamel. Prose that merely looks
# like a tag ("- !x") only costs the slower parse.
_RUAMEL_ONLY = re.compile(r"^%|(?:^[ \t]*|[-:?,\[{][ \t]+|[\[{,])(?:&\S+[ \t]+)?!", re.MULTILINE)


def fast_load(text: str) -> tuple[Any, Any] | None:
    """(data, root node) read with libyaml, or None when anything is off: the caller then reads
    the text with ruamel, which says what and where. Aliases are shared, not copied: callers bound
    what the data expands to (planctl.parsecache.plain)."""
    if "\t" in text or _RUAMEL_ONLY.search(text):
        # Tabs: libyaml reads some that ruamel refuses ("{a: x \ty}"), and the plan must load for
        # editing too. They are rare in plans; such text costs the slower parse.
        return None
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
