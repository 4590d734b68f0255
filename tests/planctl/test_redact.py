"""Secret redaction and the bounded output log: what is hidden, and that streaming hides the same."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planctl.capture import OutputCapture
from planctl.redact import Redactor, looks_secret

ENV = {
    "GITHUB_TOKEN": "tok-1234567890",
    "MY_SECRET_THING": "s3cr3t-value",
    "DB_PASSWORD": "correct horse",
    "SIGNING_KEY": "k-9876543210",
    "SHORT_TOKEN": "abc",  # too short to hide: it would blank every 'abc'
    "HOME": "/home/someone",
    "APP_DSN": "postgres://u:p@h/db",
}
SHAPES = {
    "github-token": "ghp_" + "a" * 36,
    "github-pat": "github_pat_" + "B1" * 20,
    "aws-access-key-id": "AKIA" + "ABCDEFGHIJ234567",
    "slack-token": "xoxb-1234567890-abcdefghij",
    "google-api-key": "AIza" + "x" * 35,
    "gitlab-token": "glpat-" + "y" * 20,
    "npm-token": "npm_" + "Z" * 36,
    "url-password": "https://user:pa55w0rd@example.com",
}


@pytest.fixture
def redactor() -> Redactor:
    return Redactor.for_environment(ENV, extra_names=["*_DSN"], extra_patterns=[r"internal-[0-9]{6}"])


@pytest.mark.parametrize(
    ("name", "secret"),
    [("GITHUB_TOKEN", True), ("db_password", True), ("SIGNING_KEY", True), ("KEYBOARD", False), ("HOME", False)],
)
def test_names_that_look_secret(name, secret):
    assert looks_secret(name) is secret


def test_values_of_secret_variables_are_hidden_by_name(redactor):
    text = "a tok-1234567890 b s3cr3t-value c correct horse d k-9876543210 e abc f /home/someone g postgres://u:p@h/db"
    assert redactor.text(text) == (
        "a [REDACTED:GITHUB_TOKEN] b [REDACTED:MY_SECRET_THING] c [REDACTED:DB_PASSWORD] d [REDACTED:SIGNING_KEY] "
        "e abc f /home/someone g [REDACTED:APP_DSN]"
    )


@pytest.mark.parametrize("kind", SHAPES)
def test_token_shapes_are_hidden_whoever_prints_them(redactor, kind):
    shown = redactor.text(f"before {SHAPES[kind]} after")
    assert shown == f"before [REDACTED:{kind}] after" or (
        kind == "url-password" and shown == "before https://user:[REDACTED:url-password]@example.com after"
    )
    assert redactor.text("an internal-123456 id") == "an [REDACTED:pattern] id"


def test_aws_secret_keys_are_hidden_where_they_are_labelled(redactor):
    line = "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert redactor.text(line) == "aws_secret_access_key = [REDACTED:aws-secret-access-key]"


def test_private_key_blocks_are_hidden_whole(redactor):
    text = "start\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabcdef\n-----END RSA PRIVATE KEY-----\nend\n"
    assert redactor.text(text) == "start\n[REDACTED:private-key]\nend\n"
    cut_short = "-----BEGIN PRIVATE KEY-----\nMIIE\n(the log ends here)\n"
    assert redactor.text(cut_short) == "[REDACTED:private-key]\n"


OUTPUT = (
    "line one tok-1234567890\n"
    + "x" * 70_000
    + " ghp_"
    + "q" * 40
    + " "
    + "y" * 70_000
    + "\n-----BEGIN EC PRIVATE KEY-----\nsecretbody\n-----END EC PRIVATE KEY-----\ntail s3cr3t-value"
).encode()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=20_000), min_size=1, max_size=30))
def test_streaming_hides_what_a_whole_text_hides(sizes):
    redactor = Redactor.for_environment(ENV)
    stream, out, at = redactor.stream(), b"", 0
    for size in sizes * (len(OUTPUT) // sum(sizes) + 1):
        out += stream.feed(OUTPUT[at : at + size])
        at += size
        if at >= len(OUTPUT):
            break
    out += stream.flush()
    for secret in (b"tok-1234567890", b"q" * 40, b"secretbody", b"s3cr3t-value"):
        assert secret not in out
    assert out.count(b"[REDACTED:") == 4 and out.endswith(b"tail [REDACTED:MY_SECRET_THING]")


def capture(tmp_path, log_bytes: int, archive_bytes: int, data: bytes) -> tuple[str, bytes | None, bytes]:
    shown: list[bytes] = []
    log = OutputCapture(tmp_path, Redactor.for_environment(ENV), log_bytes, archive_bytes, shown.append)
    for i in range(0, len(data), 999):
        log.feed(data[i : i + 999])
    log.close()
    archive = tmp_path / "output.log.gz"
    return (
        (tmp_path / "output.log").read_text(),
        gzip.decompress(archive.read_bytes()) if archive.exists() else None,
        b"".join(shown),
    )


def test_a_short_log_is_kept_whole_and_redacted(tmp_path):
    log, archive, shown = capture(tmp_path, 1024, 4096, b"hello tok-1234567890\n")
    assert log == "hello [REDACTED:GITHUB_TOKEN]\n" and archive is None and shown == log.encode()


def test_a_long_log_keeps_head_tail_and_a_compressed_copy(tmp_path):
    data = b"".join(b"%05d\n" % i for i in range(3000))  # 18,000 bytes
    log, archive, shown = capture(tmp_path, 1200, 1 << 20, data)
    head, _, note_and_tail = log.partition("\n[planctl: ")
    assert head == data[:600].decode() and note_and_tail.endswith("]\n" + data[-600:].decode())
    assert note_and_tail.startswith("16800 bytes of output left out here")
    assert "limits.log_bytes (1.172 KiB)" in note_and_tail and "the whole output is in output.log.gz" in note_and_tail
    assert archive == data and shown == data


def test_the_compressed_copy_stops_at_its_limit(tmp_path):
    data = b"".join(b"%05d\n" % i for i in range(3000))
    log, archive, _ = capture(tmp_path, 1200, 6000, data)
    assert archive is not None and archive.startswith(data[:6000])
    assert archive.endswith(b"12000 more bytes were not kept]\n")
    assert "output.log.gz holds its first 5.859 KiB (limits.log_archive_bytes)" in log
    (tmp_path / "none").mkdir()
    log_without, archive_without, _ = capture(tmp_path / "none", 1200, 0, data)
    assert archive_without is None and "no compressed copy is kept (limits.log_archive_bytes is 0)" in log_without
