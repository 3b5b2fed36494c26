"""Pure pieces of the hosted dialect: the client's view of a session configuration, resume tokens, and the
played transcript (deltas and trimmed text from one estimate)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from voxgate.conversation.played_transcript import PlayedTranscript
from voxgate.conversation.reply import Alignment, SpokenSegment
from voxgate.protocol.config import SessionConfig
from voxgate.protocol.session_view import session_config_view
from voxgate.store.resume_tokens import SIGNING_PURPOSE, ResumeTokens
from voxgate.store.secret_box import SecretBox

# --- session_config_view ---------------------------------------------------------------------------------
HTTP_TOOL = {
    "name": "lookup",
    "parameters": {"type": "object", "properties": {"secret": {"type": "string"}, "api_key": {}}},
    "http": {
        "url": "https://api.example.com/x",
        "headers": [{"name": "X-Api-Key", "value": "hdr-secret"}, {"name": "X-Kept"}],
    },
}
CONFIG = SessionConfig.model_validate(
    {
        "agent_id": "agent_1",
        "system_prompt": "p",
        "tools": [HTTP_TOOL, {"name": "client_side"}],
        "llm": [{"base_url": "https://llm.example.com/v1", "model": "m", "api_key": "llm-secret"}],
    }
)


def test_view_keeps_the_configuration_and_drops_the_secrets() -> None:
    view = session_config_view(CONFIG)
    text = json.dumps(view)
    assert "hdr-secret" not in text and "llm-secret" not in text
    assert view["id"] == "agent_1" and "agent_id" not in view
    assert view["llm"] == [{"base_url": "https://llm.example.com/v1", "model": "m"}]
    http_tool, client_tool = view["tools"]
    assert http_tool["http"]["headers"] == [{"name": "X-Api-Key"}, {"name": "X-Kept"}]
    assert http_tool["parameters"] == HTTP_TOOL["parameters"]  # a client's schema is not a secret
    assert client_tool["type"] == "function" and "http" not in client_tool
    assert client_tool["response_instructions"] is None and client_tool["timeout_seconds"] == 120
    # exactly HOSTED §4's tool fields: the stored tool id and keypad arguments stay on the agent record
    assert set(http_tool) == {
        "type",
        "name",
        "description",
        "parameters",
        "execution_mode",
        "timeout_seconds",
        "response_instructions",
        "http",
    }
    assert view["pre_connect_requests"] == [] and view["input"]["format"]["encoding"] == "audio/pcm"
    assert session_config_view(SessionConfig())["id"] is None


# --- resume tokens ---------------------------------------------------------------------------------------
def _signer(secret: str, tmp_path: Path, now: float = 1000.0) -> ResumeTokens:
    box = SecretBox.from_settings(secret, tmp_path)
    return ResumeTokens(box.derive_key(SIGNING_PURPOSE), clock=lambda: now)


def test_resume_token_is_verified_by_every_instance_with_the_secret_key(tmp_path: Path) -> None:
    token = _signer("shared secret", tmp_path / "a").issue("sess_1", "proj", 2000)
    grant = _signer("shared secret", tmp_path / "b").verify(token)
    assert grant is not None
    assert (grant.session_id, grant.project_id, grant.expires_at) == ("sess_1", "proj", 2000)
    assert _signer("another secret", tmp_path / "c").verify(token) is None
    assert _signer("shared secret", tmp_path / "d", now=2000.0).verify(token) is None  # expired


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("vgr_", "vgt_"),
        lambda t: t[:-2],
        lambda t: t.split(".")[0],
        lambda t: "vgr_" + t[5:],
        lambda t: t + "é",
        lambda t: "vgr_.",
        lambda t: "vgr_" + "A" * 2000,
    ],
    ids=["prefix", "short-signature", "no-signature", "payload", "non-ascii", "empty", "huge"],
)
def test_mangled_resume_tokens_are_refused(tmp_path: Path, mangle) -> None:  # type: ignore[no-untyped-def]
    signer = _signer("k", tmp_path)
    assert signer.verify(mangle(signer.issue("sess_1", "proj", 2000))) is None


# --- played transcript -----------------------------------------------------------------------------------
def _segments(*, last_complete: bool = True) -> list[SpokenSegment]:
    return [
        SpokenSegment("One two three four.", 0, 400, complete=True),
        SpokenSegment("Five six.", 400, 600, complete=last_complete),
    ]


@pytest.mark.parametrize(
    ("heard_ms", "text"),
    [
        (0, ""),
        (99, ""),
        (100, "One"),
        (250, "One two"),
        (400, "One two three four."),
        (500, "One two three four. Five"),
    ],
)
def test_heard_text_by_words(heard_ms: float, text: str) -> None:
    assert Alignment(_segments()).heard_text(heard_ms) == text


def test_deltas_wait_for_a_segment_whose_audio_is_still_coming() -> None:
    played = PlayedTranscript(_segments(last_complete=False), "reply_1", "item_1")
    first = played.advance(450)
    assert first is not None
    assert (first.delta, first.start_ms, first.end_ms) == ("One two three four.", 0, 400)
    assert played.advance(550) is None  # "Five" is heard, but the segment's length is not known yet
    assert played.settle_heard(550) == "One two three four. Five"
    rest = played.rest()
    assert rest is not None and (rest.delta, rest.start_ms, rest.end_ms) == (" Five", 400, 500)
    assert played.rest() is None and played.advance(600) is None


def test_a_segment_without_audio_yet_is_not_heard() -> None:
    segments = [SpokenSegment("Done.", 0, 100, complete=True), SpokenSegment("Next words", 100, 100)]
    assert PlayedTranscript(segments, "r", "i").settle_heard(500) == "Done."


@pytest.mark.parametrize("stop_ms", [None, 0, 120, 399, 400, 401, 590, 5000])
def test_deltas_always_add_up_to_the_final_text(stop_ms: float | None) -> None:
    for steps in itertools.combinations([50, 130, 260, 410, 470, 620], 3):
        played = PlayedTranscript(_segments(), "r", "i")
        deltas = []
        for ms in steps:  # the playhead moves on until the reply is cut at stop_ms (or completes)
            if stop_ms is not None and ms > stop_ms:
                break
            if (delta := played.advance(ms)) is not None:
                deltas.append(delta)
        final = played.settle_all() if stop_ms is None else played.settle_heard(stop_ms)
        if (rest := played.rest()) is not None:
            deltas.append(rest)
        assert "".join(d.delta for d in deltas) == final
        assert all(d.reply_id == "r" and d.item_id == "i" for d in deltas)
