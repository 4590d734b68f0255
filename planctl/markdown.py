"""Markdown read as blocks, with tables whose rows survive unescaped pipes.

markdown-it-py (CommonMark with GFM tables) finds the blocks: headings, paragraphs, lists, tables,
quotes, code and HTML, each with its source line range, so that unmapped content can be kept
verbatim and fences hide what looks like tables or headings. Hand-written plans often put a ``|``
inside a cell without escaping it (inline code, ``|Δk|``, ``pytest ... | tee log``); GFM then splits
the row into too many cells and drops the extra ones. ``fit_row`` repairs such rows: it re-splits the
source line and keeps as separators only the pipes that best explain the table's column count (not
inside code spans, spaced like separators, and putting a state marker in the state column).
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

_PARSER = MarkdownIt("commonmark").enable("table")
_DELIMITER_CELL = re.compile(r"^\s*:?-+:?\s*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BACKTICKS = re.compile(r"`+")
# A cell starting with one of these after a spaced pipe is most likely the right side of a shell pipe.
_SHELL_FILTERS = frozenset(
    [
        "tee",
        "grep",
        "egrep",
        "head",
        "tail",
        "sort",
        "uniq",
        "wc",
        "xargs",
        "awk",
        "sed",
        "cut",
        "tr",
        "jq",
        "less",
        "column",
        "cat",
        "python",
        "python3",
        "bash",
        "sh",
    ]
)
_MAX_COMBINATIONS = 20000


@dataclass
class Item:
    """A list item: its source lines (verbatim), first paragraph's text and nested items."""

    start: int
    end: int
    source: str
    text: str
    children: list[Item] = field(default_factory=list)


@dataclass
class Row:
    line: int  # 0-based source line
    source: str


@dataclass
class Block:
    kind: str  # heading, paragraph, list, table, quote, code, html, rule
    start: int  # 0-based first line
    end: int  # one past the last line
    source: str  # the block's lines as written, trailing blank lines removed
    level: int = 0  # heading level
    title: str = ""  # heading text
    items: list[Item] = field(default_factory=list)  # list items
    header: list[str] = field(default_factory=list)  # table header cells
    rows: list[Row] = field(default_factory=list)  # table body rows


def parse_blocks(text: str) -> list[Block]:
    """The top-level blocks of a markdown document, in order."""
    lines = text.splitlines()
    blanks = _table_breaks(lines)
    tokens = _PARSER.parse("\n".join(_with_blank_lines(lines, blanks)))
    for token in tokens:  # line numbers of the text as written
        if token.map is not None:
            token.map = [n - bisect.bisect_left(blanks, n) for n in token.map]
    blocks: list[Block] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        close = _closing(tokens, i)
        if token.map is None:
            i = close + 1
            continue
        start, end = token.map
        source = _source(lines, start, end)
        kind = _KINDS.get(token.type, "paragraph")
        block = Block(kind, start, end, source)
        if kind == "heading":
            block.level, block.title = int(token.tag[1:]), tokens[i + 1].content.strip()
        elif kind == "list":
            block.items = _items(tokens, i + 1, close, lines)
        elif kind == "table":
            block.header = [t.content.strip() for t in tokens[i:close] if t.type == "inline"][
                : sum(t.type == "th_open" for t in tokens[i:close])
            ]
            block.rows = [Row(t.map[0], lines[t.map[0]]) for t in tokens[i:close] if t.type == "tr_open" and t.map][1:]
        elif kind == "paragraph":
            block = _pipe_paragraph(block, lines) or block
        blocks.append(block)
        i = close + 1
    return blocks


def _table_breaks(lines: list[str]) -> list[int]:
    """Where a blank line goes so that a table that starts right under other text is a table:
    under a list item (``- Goal: x`` then ``| ID | ...``) or a quote, CommonMark reads its rows as
    a lazy continuation of that paragraph, and its tasks would be lost in the text. The positions
    are lines of the text with the blank lines in it, in order; fenced code is left alone."""
    blanks: list[int] = []
    fence: str | None = None
    for k, line in enumerate(lines):
        opening = _FENCE.match(line)
        if opening and (fence is None or line.strip().startswith(fence)):
            fence = opening[1][0] * 3 if fence is None else None
            continue
        if fence is None and k and _starts_table(lines, k) and lines[k - 1].strip() and lines[k - 1][:1] != "|":
            blanks.append(k + len(blanks))
    return blanks


def _starts_table(lines: list[str], k: int) -> bool:
    if not lines[k].startswith("|") or k + 1 >= len(lines):
        return False
    delimiter = split_row(lines[k + 1])[0]
    return bool(delimiter) and all(_DELIMITER_CELL.match(cell) for cell in delimiter)


def _with_blank_lines(lines: list[str], blanks: list[int]) -> list[str]:
    out = list(lines)
    for position in blanks:
        out.insert(position, "")
    return out


_KINDS = {
    "heading_open": "heading",
    "paragraph_open": "paragraph",
    "bullet_list_open": "list",
    "ordered_list_open": "list",
    "table_open": "table",
    "blockquote_open": "quote",
    "fence": "code",
    "code_block": "code",
    "html_block": "html",
    "hr": "rule",
}


def _closing(tokens: list[Token], i: int) -> int:
    """Index of the token that closes the one at ``i`` (itself when it does not nest)."""
    if tokens[i].nesting != 1:
        return i
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j
    return len(tokens) - 1


def _source(lines: list[str], start: int, end: int) -> str:
    chunk = lines[start:end]
    while chunk and not chunk[-1].strip():
        chunk.pop()
    return "\n".join(chunk)


def _items(tokens: list[Token], i: int, stop: int, lines: list[str]) -> list[Item]:
    items = []
    while i < stop:
        token = tokens[i]
        close = _closing(tokens, i)
        if token.type == "list_item_open" and token.map:
            start, end = token.map
            inner = tokens[i + 1 : close]
            first = next((t.content for t in inner if t.type == "inline"), "")
            nested_at = next(
                (k for k, t in enumerate(inner) if t.type.endswith("list_open") and t.level == token.level + 1), None
            )
            children = []
            if nested_at is not None:
                children = _items(tokens, i + 1 + nested_at + 1, i + 1 + _closing(inner, nested_at), lines)
            source = _source(lines, start, end)
            items.append(Item(start, start + source.count("\n") + 1, source, first, children))
        i = close + 1
    return items


def _pipe_paragraph(block: Block, lines: list[str]) -> Block | None:
    """A paragraph that is a table GFM rejected (its header and delimiter rows differ in cell
    count), read as a table with the header's columns."""
    chunk = lines[block.start : block.end]
    if len(chunk) < 2 or not all(line.lstrip().startswith("|") for line in chunk):
        return None
    delimiter = split_row(chunk[1])[0]
    if not delimiter or not all(_DELIMITER_CELL.match(c) for c in delimiter):
        return None
    header = [c.strip() for c in split_row(chunk[0])[0]]
    rows = [Row(block.start + k, line) for k, line in enumerate(chunk[2:], start=2)]
    return Block("table", block.start, block.end, block.source, header=header, rows=rows)


@dataclass(frozen=True)
class Pipe:
    """A pipe between two cells of a row, and how much it looks like a column separator."""

    in_code: bool
    spaced_left: bool
    spaced_right: bool
    next_word: str

    @property
    def score(self) -> int:
        if self.in_code:
            return -100
        score = {2: 3, 1: 1, 0: -2}[self.spaced_left + self.spaced_right]
        if self.spaced_left and self.spaced_right and self.next_word in _SHELL_FILTERS:
            score -= 2
        return score


def split_row(line: str) -> tuple[list[str], list[Pipe]]:
    """A table row split at every unescaped pipe, as GFM does: the cells (unstripped, ``\\|``
    unescaped) and the pipes between them."""
    text = line.strip()
    code = _code_ranges(text)
    cuts = [k for k, ch in enumerate(text) if ch == "|" and not _escaped(text, k)]
    if cuts and cuts[0] == 0:
        cuts = cuts[1:]
        begin = 1
    else:
        begin = 0
    ends_with_pipe = bool(cuts) and cuts[-1] == len(text) - 1
    inner = cuts[:-1] if ends_with_pipe else cuts
    bounds = [begin, *[k + 1 for k in inner]]
    stops = [*inner, cuts[-1] if ends_with_pipe else len(text)]
    cells = [text[a:b].replace("\\|", "|") for a, b in zip(bounds, stops)]
    pipes = [
        Pipe(
            any(a < k < b for a, b in code),
            k > 0 and text[k - 1].isspace(),
            k + 1 < len(text) and text[k + 1].isspace(),
            (text[k + 1 :].split() or [""])[0],
        )
        for k in inner
    ]
    return cells, pipes


def fit_row(
    line: str, columns: int, state_column: int | None, is_state: Callable[[str], bool]
) -> tuple[list[str], bool]:
    """The row's ``columns`` cells (stripped) and whether pipes inside cells had to be merged back.

    When the row splits into more cells than the table has columns, or the state column does not
    hold a state while another cell does, the split is redone choosing which pipes separate cells:
    the best-scoring set (see ``Pipe.score``) that puts a state in the state column."""
    cells, pipes = split_row(line)
    stripped = [c.strip() for c in cells]
    anchored = state_column is not None and any(is_state(c) for c in stripped)

    def fits(candidate: list[str]) -> bool:
        if not anchored or state_column is None:
            return True
        return state_column < len(candidate) and is_state(candidate[state_column])

    if len(cells) <= columns and fits(stripped):
        return stripped + [""] * (columns - len(cells)), False
    best: tuple[int, list[str]] | None = None
    for separators in range(min(columns, len(cells)) - 1, -1, -1):
        for chosen in _choices(pipes, separators):
            merged = _merge(cells, chosen)
            if fits(merged):
                score = sum(pipes[k].score for k in chosen)
                if best is None or score > best[0]:
                    best = (score, merged)
        if best is not None:
            break
    if best is None:  # nothing puts a state in the state column: merge the extra cells into the last
        best = (0, _merge(cells, tuple(range(columns - 1))))
    merged = best[1]
    return merged + [""] * (columns - len(merged)), True


def _choices(pipes: list[Pipe], count: int) -> list[tuple[int, ...]]:
    if math.comb(len(pipes), count) <= _MAX_COMBINATIONS:
        return list(itertools.combinations(range(len(pipes)), count))
    ranked = sorted(range(len(pipes)), key=lambda k: -pipes[k].score)[:count]
    return [tuple(sorted(ranked))]


def _merge(cells: list[str], separators: tuple[int, ...]) -> list[str]:
    merged, current = [], cells[0]
    for k in range(len(cells) - 1):
        if k in separators:
            merged.append(current.strip())
            current = cells[k + 1]
        else:
            current += "|" + cells[k + 1]
    merged.append(current.strip())
    return merged


def _escaped(text: str, k: int) -> bool:
    backslashes = len(text[:k]) - len(text[:k].rstrip("\\"))
    return backslashes % 2 == 1


def _code_ranges(text: str) -> list[tuple[int, int]]:
    """Spans of inline code: a run of n backticks up to the next run of exactly n."""
    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(text)]
    spans, i = [], 0
    while i < len(runs):
        length = runs[i][1] - runs[i][0]
        close = next((j for j in range(i + 1, len(runs)) if runs[j][1] - runs[j][0] == length), None)
        if close is None:
            i += 1
            continue
        spans.append((runs[i][0], runs[close][1]))
        i = close + 1
    return spans
