"""Webhook signatures and artifact links: what verifies and what does not."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from voxgate.history.links import ArtifactLinks
from voxgate.history.signatures import signature_header, verify

SECRET = "s" * 40
BODY = b'{"type":"session.completed"}'
NOW = int(time.time())


@pytest.mark.parametrize(
    ("secret", "body", "header", "ok"),
    [
        (SECRET, BODY, signature_header(SECRET, BODY, NOW), True),
        ("other" * 8, BODY, signature_header(SECRET, BODY, NOW), False),
        (SECRET, BODY + b" ", signature_header(SECRET, BODY, NOW), False),
        (SECRET, BODY, signature_header(SECRET, BODY, NOW - 3600), False),  # a replay of an old one
        (SECRET, BODY, f"t={NOW},v1=00", False),
        (SECRET, BODY, "v1=abc", False),
        (SECRET, BODY, "", False),
        (SECRET, BODY, None, False),
    ],
)
def test_signature_verification(secret: str, body: bytes, header: str | None, ok: bool) -> None:
    assert verify(secret, body, header) is ok


def test_the_signature_is_an_hmac_of_time_dot_body() -> None:
    import hashlib
    import hmac

    header = signature_header(SECRET, BODY, 1700000000)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def _parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path, query["expires"][0], query["signature"][0]


def test_artifact_links() -> None:
    links = ArtifactLinks(b"k" * 32, lifetime_seconds=60)
    path, expires, signature = _parts(links.link("http://h", "sess_1", "audio.ogg"))
    assert path == "/v1/artifacts/sess_1/audio.ogg"
    assert links.check(path, expires, signature) is None
    assert links.check("/v1/artifacts/sess_1/timeline.json", expires, signature) == "invalid"
    assert links.check(path, str(int(expires) + 60), signature) == "invalid"
    assert links.check(path, "soon", signature) == "invalid"
    assert links.check(path, expires, None) == "invalid"
    assert ArtifactLinks(b"x" * 32, 60).check(path, expires, signature) == "invalid"
    old_path, old_expires, old_signature = _parts(
        links.link("http://h", "sess_1", "audio.ogg", now=NOW - 120)
    )
    assert links.check(old_path, old_expires, old_signature) == "expired"
