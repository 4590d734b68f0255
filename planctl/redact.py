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

Each is replaced by ``[REDACTED:<name or kind>]``. Output is redacted as a stream of lines (a
private key spans lines; a token may arrive split across reads), in bytes, so output that is not
UTF-8 is handled too.

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
TOKEN_SHAPES: dict[str, bytes] = {
    "github-token": rb"gh[pousr]_[A-Za-z0-9]{36,255}",
    "github-pat": rb"github_pat_[A-Za-z0-9_]{22,255}",
    "aws-access-key-id": rb"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|APKA)[0-9A-Z]{16}\b",
    "aws-secret-access-key": rb"(?i)(?<=aws_secret_access_key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+]{40}\b",
    "slack-token": rb"xox[abposr]-[A-Za-z0-9-]{10,255}",
    "google-api-key": rb"AIza[0-9A-Za-z_-]{35}",
    "stripe-key": rb"[rs]k_live_[0-9A-Za-z]{16,255}",
    "gitlab-token": rb"glpat-[0-9A-Za-z_-]{20,255}",
    "npm-token": rb"npm_[A-Za-z0-9]{36}",
    "pypi-token": rb"pypi-AgE[A-Za-z0-9_-]{50,1000}",
    "url-password": rb"(?<=://)[^\s/:@]{1,255}:[^\s/@]{1,255}(?=@)",
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


@dataclass
class Redactor:
    """What to hide, built once per run from its environment and the plan's ``redact`` settings."""

    values: dict[bytes, bytes] = field(default_factory=dict)  # secret value -> its marker
    patterns: list[tuple[re.Pattern[bytes], bytes]] = field(default_factory=list)

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
        patterns = [(re.compile(shape), _marker(kind)) for kind, shape in TOKEN_SHAPES.items()]
        patterns += [(re.compile(p.encode()), _marker("pattern")) for p in extra_patterns]
        return cls(values, patterns)

    @property
    def longest_value(self) -> int:
        return max(map(len, self.values), default=0)

    def redact(self, data: bytes) -> bytes:
        """``data`` (a whole text, or a run of whole lines) with every secret replaced."""
        return self._lines(data.splitlines(keepends=True), in_key=False)[0]

    def text(self, text: str) -> str:
        return self.redact(text.encode(errors="surrogateescape")).decode(errors="surrogateescape")

    def stream(self) -> StreamRedactor:
        return StreamRedactor(self)

    def _inline(self, line: bytes) -> bytes:
        # Longest values first, so a secret that contains another is hidden whole.
        for value in sorted(self.values, key=len, reverse=True):
            if value in line:
                line = line.replace(value, self.values[value])
        for pattern, marker in self.patterns:
            line = pattern.sub(marker, line)
        return line

    def _after_key(self, rest: bytes) -> bytes:
        """What follows a key's END marker on its line (the marker line already ended the key)."""
        return self._inline(rest) if rest.strip() else b""

    def _lines(self, lines: Iterable[bytes], in_key: bool) -> tuple[bytes, bool]:
        out = []
        for line in lines:
            if in_key:
                end = _KEY_END.search(line)
                if end:
                    in_key = False
                    out.append(self._after_key(line[end.end() :]))
                continue
            begin = _KEY_BEGIN.search(line)
            if begin:
                end = _KEY_END.search(line, begin.end())
                head = self._inline(line[: begin.start()]) + _marker("private-key")
                if end:
                    out.append(head + (self._after_key(line[end.end() :]) or b"\n"))
                else:
                    out.append(head + b"\n")
                    in_key = True
                continue
            out.append(self._inline(line))
        return b"".join(out), in_key


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
        out, self.in_key = self.redactor._lines(ready.splitlines(keepends=True), self.in_key)
        return out

    def flush(self) -> bytes:
        out, self.in_key = self.redactor._lines([self.pending] if self.pending else [], self.in_key)
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
        for pattern, _ in self.redactor.patterns:
            for match in pattern.finditer(self.pending):
                yield match.start(), match.end()
        begin = _KEY_BEGIN.search(self.pending)
        if begin:
            yield begin.start(), len(self.pending)
