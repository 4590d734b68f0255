"""Secrets kept out of everything planctl writes down: bundles, attempt records, ledgers, commits.

Two kinds of secret are recognised:

- the values of environment variables whose names look secret: ``*TOKEN*``, ``*SECRET*``,
  ``*PASSWORD*``, ``*PASSWD*``, ``*CREDENTIAL*``, ``*_KEY`` (any case), plus the plan's
  ``redact.names``; values shorter than :data:`MIN_SECRET_LENGTH` are left alone, since replacing
  every ``1`` in a log hides nothing;
- well-known token shapes, whatever prints them: GitHub tokens (``ghp_``, ``gho_``, ``ghu_``,
  ``ghs_``, ``ghr_``, ``github_pat_``), AWS access key ids (``AKIA``...) and labelled secret keys,
  Slack tokens (``xox[abposr]-``), Google API keys, Stripe, GitLab, npm and PyPI tokens, passwords
  in URLs (``scheme://user:password@host``), and private-key blocks (``-----BEGIN ... PRIVATE
  KEY-----`` to ``-----END ...``), plus the plan's ``redact.patterns``.

Each is replaced by ``[REDACTED:<name or kind>]``. Output is redacted as a stream, cut only at
line ends (or, in a very long line, where no secret can straddle the cut), with the state of an
open private-key block carried across; in bytes, so output that is not UTF-8 is handled too.

A maintained detector library was considered (detect-secrets): its detectors report a prefix
(``ghp``) rather than the token for GitHub tokens and only the header line of a private key, its
entropy detectors flag ordinary words such as ``PASSED``, and it scans a line in milliseconds,
which is an hour for a million-line log. The shapes here are a short, tested list instead.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

SECRET_NAMES = ("*TOKEN*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*CREDENTIAL*", "*_KEY")
MIN_SECRET_LENGTH = 6
_AWS_PREFIXES = (b"AKIA", b"ASIA", b"ABIA", b"ACCA", b"AGPA", b"AIDA", b"AROA", b"ANPA", b"ANVA", b"APKA")
# kind -> (literals one of which every match contains, pattern). A pattern runs only where one of
# its literals occurs, which keeps a clean 100 MB log to a few fast substring scans. Where the
# pattern has a group named "secret", only that group is replaced (the label or user name stays).
TOKEN_SHAPES: dict[str, tuple[tuple[bytes, ...], bytes]] = {
    "github-token": ((b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"), rb"gh[pousr]_[A-Za-z0-9]{36,255}"),
    "github-pat": ((b"github_pat_",), rb"github_pat_[A-Za-z0-9_]{22,255}"),
    "aws-access-key-id": (
        _AWS_PREFIXES,
        rb"(?<![0-9A-Z])(?:" + b"|".join(_AWS_PREFIXES) + rb")[0-9A-Z]{16}(?![0-9A-Z])",
    ),
    "aws-secret-access-key": (
        (b"aws_secret_access_key", b"AWS_SECRET_ACCESS_KEY"),
        rb"(?:aws_secret_access_key|AWS_SECRET_ACCESS_KEY)[\"']?\s*[:=]\s*[\"']?(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
    ),
    "slack-token": ((b"xox",), rb"xox[abposr]-[A-Za-z0-9-]{10,255}"),
    "google-api-key": ((b"AIza",), rb"AIza[0-9A-Za-z_-]{35}"),
    "stripe-key": ((b"k_live_",), rb"[rs]k_live_[0-9A-Za-z]{16,255}"),
    "gitlab-token": ((b"glpat-",), rb"glpat-[0-9A-Za-z_-]{20,255}"),
    "npm-token": ((b"npm_",), rb"npm_[A-Za-z0-9]{36}"),
    "pypi-token": ((b"pypi-AgE",), rb"pypi-AgE[A-Za-z0-9_-]{50,1000}"),
    "url-password": ((b"://",), rb"://[^\s/:@]{1,255}:(?P<secret>[^\s/@]{1,255})@"),
}
_KEY_BEGIN = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(rb"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_MAX_PENDING = 1 << 16  # a line longer than this is redacted and passed on in pieces
_SHAPE_SPAN = 1100  # no token shape above is longer than this


def looks_secret(name: str, extra_names: Iterable[str] = ()) -> bool:
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern.upper()) for pattern in (*SECRET_NAMES, *extra_names))


def _marker(label: str) -> bytes:
    return f"[REDACTED:{label}]".encode()


@dataclass(frozen=True)
class _Shape:
    anchors: tuple[bytes, ...]  # empty: no literal is known, the pattern always runs
    pattern: re.Pattern[bytes]
    marker: bytes

    def may_match(self, data: bytes) -> bool:
        return not self.anchors or any(anchor in data for anchor in self.anchors)

    def replace(self, match: re.Match[bytes]) -> bytes:
        if "secret" not in self.pattern.groupindex:
            return self.marker
        whole, start = match.group(0), match.start()
        return whole[: match.start("secret") - start] + self.marker + whole[match.end("secret") - start :]


@dataclass
class Redactor:
    """What to hide, built once per run from its environment and the plan's ``redact`` settings."""

    values: dict[bytes, bytes] = field(default_factory=dict)  # secret value -> its marker
    patterns: list[_Shape] = field(default_factory=list)

    @classmethod
    def for_environment(
        cls, env: Mapping[str, str], extra_names: Iterable[str] = (), extra_patterns: Iterable[str] = ()
    ) -> Redactor:
        names = list(extra_names)
        values = {
            value.encode(errors="surrogateescape"): _marker(name)
            for name, value in env.items()
            if len(value) >= MIN_SECRET_LENGTH and looks_secret(name, names)
        }
        patterns = [
            _Shape(anchors, re.compile(shape), _marker(kind)) for kind, (anchors, shape) in TOKEN_SHAPES.items()
        ]
        patterns += [_Shape((), re.compile(p.encode()), _marker("pattern")) for p in extra_patterns]
        return cls(values, patterns)

    @property
    def longest_value(self) -> int:
        return max(map(len, self.values), default=0)

    def redact(self, data: bytes) -> bytes:
        """``data`` (a whole text, or a run of whole lines) with every secret replaced."""
        return self._scan(data, in_key=False)[0]

    def text(self, text: str) -> str:
        return self.redact(text.encode(errors="surrogateescape")).decode(errors="surrogateescape")

    def stream(self) -> StreamRedactor:
        return StreamRedactor(self)

    def _inline(self, line: bytes) -> bytes:
        # Longest values first, so a secret that contains another is hidden whole.
        for value in sorted(self.values, key=len, reverse=True):
            if value in line:
                line = line.replace(value, self.values[value])
        for shape in self.patterns:
            if shape.may_match(line):
                line = shape.pattern.sub(shape.replace, line)
        return line

    def _may_hold_secret(self, data: bytes) -> bool:
        """A whole-buffer check first: most output holds no secret, and a few substring scans
        over a large file are far cheaper than the patterns themselves."""
        return (
            any(value in data for value in self.values)
            or any(shape.may_match(data) and shape.pattern.search(data) for shape in self.patterns)
            or _KEY_BEGIN.search(data) is not None
        )

    def _scan(self, data: bytes, in_key: bool) -> tuple[bytes, bool]:
        """``data`` redacted, starting inside a private key if ``in_key``; and whether it ends
        inside one (a key whose END has not come yet hides everything after its BEGIN)."""
        if not in_key and not self._may_hold_secret(data):
            return data, False
        out, at = [], 0
        if in_key:
            end = _KEY_END.search(data)
            if end is None:
                return b"", True
            at = end.end()
        while True:
            begin = _KEY_BEGIN.search(data, at)
            if begin is None:
                out.append(self._inline(data[at:]))
                return b"".join(out), False
            out.append(self._inline(data[at : begin.start()]) + _marker("private-key"))
            end = _KEY_END.search(data, begin.end())
            if end is None:
                out.append(b"\n")
                return b"".join(out), True
            at = end.end()


class StreamRedactor:
    """Redacts output as it arrives: whole lines go out at once, a partial line waits for its end
    (or, past 64 KiB, goes out in pieces cut where no secret can straddle the cut)."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.pending = b""
        self.in_key = False
        self.hold = max(_SHAPE_SPAN, redactor.longest_value + 1)

    def feed(self, chunk: bytes) -> bytes:
        self.pending += chunk
        cut = self.pending.rfind(b"\n") + 1
        if len(self.pending) - cut > _MAX_PENDING:
            cut = max(cut, self._safe_cut(len(self.pending) - self.hold))
        ready, self.pending = self.pending[:cut], self.pending[cut:]
        out, self.in_key = self.redactor._scan(ready, self.in_key)
        return out

    def flush(self) -> bytes:
        out, self.in_key = self.redactor._scan(self.pending, self.in_key)
        self.pending = b""
        return out

    def _safe_cut(self, cut: int) -> int:
        """``cut``, moved back to the start of any secret that would span it."""
        for start, end in self._spans():
            if start < cut < end:
                cut = start
        return cut

    def _spans(self) -> Iterator[tuple[int, int]]:
        for value in self.redactor.values:
            start = self.pending.find(value)
            while start >= 0:
                yield start, start + len(value)
                start = self.pending.find(value, start + 1)
        for shape in self.redactor.patterns:
            if shape.may_match(self.pending):
                for match in shape.pattern.finditer(self.pending):
                    yield match.start(), match.end()
        begin = _KEY_BEGIN.search(self.pending)
        if begin:
            yield begin.start(), len(self.pending)
