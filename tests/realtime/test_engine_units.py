"""Unit tests of engine parts that need no server: HTTP tool rules, alignment, ledger, checkpoints, events."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from voxgate.conversation.audio_intake import GAP_CHECK_SECONDS, GAP_THRESHOLD_SECONDS, audio_gap_ms
from voxgate.conversation.backchannel import is_backchannel
from voxgate.conversation.http_tools import (
    RESPONSE_CAP_BYTES,
    DestinationRefused,
    HttpToolRunner,
    check_destination,
    query_params,
)
from voxgate.conversation.ledger import CallState, Ledger, ToolCallRecord
from voxgate.conversation.reply import Alignment, SpokenSegment
from voxgate.conversation.turns import ends_on_number, reads_as_complete
from voxgate.protocol.config import HttpSpec
from voxgate.protocol.events import ProtocolError, parse_client_event
from voxgate.store.checkpoints import ClaimOutcome, MemoryCheckpointStore, SessionCheckpoint


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/big"):
            body = b"x" * (RESPONSE_CAP_BYTES * 3)
            self.send_response(200)
        elif self.path.startswith("/redirect"):
            body = b""
            self.send_response(302)
            self.send_header("Location", "/big")
        elif self.path.startswith("/slow"):
            time.sleep(2)
            body = b"late"
            self.send_response(200)
        else:
            body = b"nope"
            self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _spec(url: str) -> HttpSpec:
    return HttpSpec.model_validate(
        {"url": url, "http_method": "GET"}, context={"allowed_private_hosts": ["127.0.0.1"]}
    )


async def test_response_is_capped_at_8_kib(base_url: str) -> None:
    runner = HttpToolRunner(["127.0.0.1"])
    outcome = await runner.run(_spec(f"{base_url}/big"), {}, headers={}, timeout_seconds=5)
    await runner.aclose()
    assert not outcome.is_error and len(outcome.text) == RESPONSE_CAP_BYTES


async def test_redirects_are_not_followed(base_url: str) -> None:
    runner = HttpToolRunner(["127.0.0.1"])
    outcome = await runner.run(_spec(f"{base_url}/redirect"), {}, headers={}, timeout_seconds=5)
    await runner.aclose()
    assert outcome.is_error and outcome.status_code == 302 and "302" in json.loads(outcome.text)["error"]


async def test_errors_and_timeouts_become_text_for_the_model(base_url: str) -> None:
    runner = HttpToolRunner(["127.0.0.1"])
    failed = await runner.run(_spec(f"{base_url}/fail"), {}, headers={}, timeout_seconds=5)
    started = time.monotonic()
    slow = await runner.run(_spec(f"{base_url}/slow"), {}, headers={}, timeout_seconds=1)
    elapsed = time.monotonic() - started
    await runner.aclose()
    assert failed.is_error and "500" in json.loads(failed.text)["error"]
    assert slow.is_error and "did not answer within 1 seconds" in json.loads(slow.text)["error"]
    assert elapsed < 1.8


async def test_private_destinations_are_refused_unless_allowed(base_url: str) -> None:
    for url in (
        "http://example.com/x",
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://[::1]/x",
        "https://169.254.169.254/latest",
        "https://localhost/x",
    ):
        with pytest.raises(DestinationRefused):
            await check_destination(url, ())
    await check_destination("http://127.0.0.1:9/x", ["127.0.0.1"])
    runner = HttpToolRunner()
    outcome = await runner.run(_spec(f"{base_url}/big"), {}, headers={}, timeout_seconds=5)
    await runner.aclose()
    assert outcome.is_error and "could not be called" in json.loads(outcome.text)["error"]


def test_query_values() -> None:
    assert query_params({"a": 1, "b": True, "c": None, "d": [1, 2], "e": {"x": 1}, "f": "s"}) == [
        ("a", "1"),
        ("b", "true"),
        ("d", "[1,2]"),
        ("e", '{"x":1}'),
        ("f", "s"),
    ]


def test_alignment_trims_by_segment_and_words() -> None:
    alignment = Alignment(
        [SpokenSegment("One two three four.", 0, 400), SpokenSegment("Five six.", 400, 600)]
    )
    assert alignment.heard_text(0) == ""
    assert alignment.heard_text(250) == "One two"
    assert alignment.heard_text(400) == "One two three four."
    assert alignment.heard_text(500) == "One two three four. Five"
    assert alignment.heard_text(10_000) == alignment.full_text() == "One two three four. Five six."


def test_ledger_hides_cancelled_calls_and_round_trips() -> None:
    ledger = Ledger()
    ledger.add_user("i1", "weather?")
    ledger.propose(ToolCallRecord("c1", "get_weather", {"city": "x"}, "r1"))
    ledger.mark_sent("c1")
    ledger.propose(ToolCallRecord("c2", "other", {}, "r2"))
    ledger.add_agent("i2", "r1", "Let me check.", interrupted=False)
    ledger.answer("c1", '{"t": 1}')
    ledger.add_agent("i3", "r2", "Hm", interrupted=True)
    assert [c.call_id for c in ledger.cancel_reply_calls("r2")] == ["c2"]
    messages = ledger.to_messages("sys", "one-shot")
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool", "assistant", "system"]
    assert messages[0].content == "sys" and messages[-1].content == "one-shot"  # instructions come last
    assert messages[2].tool_calls[0].call_id == "c1"
    assert messages[4].tool_calls == []
    restored = Ledger.from_dict(json.loads(json.dumps(ledger.to_dict())))
    assert restored.calls["c2"].state is CallState.CANCELLED
    assert [m.content for m in restored.to_messages("sys")] == [m.content for m in ledger.to_messages("sys")]


async def test_checkpoint_grace_window_and_ownership() -> None:
    store = MemoryCheckpointStore(grace_seconds=0.2)
    checkpoint = SessionCheckpoint("s1", "p1", {}, {}, started_at=0, max_duration_seconds=60)
    await store.save(checkpoint)
    assert (await store.claim("s1", "p1"))[0] is ClaimOutcome.NOT_FOUND  # still attached
    await store.detach("s1")
    assert (await store.claim("s1", "p2"))[0] is ClaimOutcome.FORBIDDEN
    assert (await store.claim("s1", "p1"))[0] is ClaimOutcome.CLAIMED
    await store.detach("s1")
    await asyncio.sleep(0.3)
    assert (await store.claim("s1", "p1"))[0] is ClaimOutcome.NOT_FOUND
    await store.save(checkpoint)
    await store.end("s1")
    await store.save(checkpoint)  # a late save cannot revive an ended session
    await store.detach("s1")
    assert (await store.claim("s1", "p1"))[0] is ClaimOutcome.NOT_FOUND


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("uh-huh", True),
        ("Okay.", True),
        ("yeah, right", True),
        ("mm-hmm", True),
        ("sure", True),
        ("wait stop", False),
        ("okay but what about tomorrow", False),
        ("", False),
    ],
)
def test_backchannels(text: str, expected: bool) -> None:
    assert is_backchannel(text) is expected


@pytest.mark.parametrize(
    ("frame", "code", "param"),
    [
        ("nope", "invalid_format", None),
        ('{"type": "tool.result"}', "invalid_format", "call_id"),
        ('{"type": "tool.result", "call_id": 5}', "invalid_value", "call_id"),
        ('{"type": "session.update", "session": 3}', "invalid_format", "session"),
        ('{"type": "session.resume"}', "invalid_format", "session_id"),
    ],
)
def test_parse_errors(frame: str, code: str, param: str | None) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_event(frame)
    assert caught.value.code == code and caught.value.param == param


def test_lenient_parsing_ignores_unknown_fields_and_serialises_results() -> None:
    event = parse_client_event('{"type": "tool.result", "call_id": "c", "result": {"a": 1}, "extra": true}')
    assert event.result == '{"a":1}'  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("transcript", "complete"),
    [
        ("Thanks, that's all I needed. Goodbye.", True),
        ("What time does the last train leave?", True),
        ('He said "yes."', True),
        ("I'd like a table for two at.", False),  # ends on a word that cannot end a sentence
        ("I'd like a table for two at", False),  # no terminal punctuation
        ("Well...", False),
        ("Um.", False),
        ("No.", False),  # often the start of "No, I said Tuesday.": the end-of-turn model decides
        ("Yes!", False),
        ("No, Tuesday.", True),
        ("", False),
        (None, False),
    ],
)
def test_reads_as_complete(transcript: str | None, complete: bool) -> None:
    assert reads_as_complete(transcript) is complete


@pytest.mark.parametrize(
    ("transcript", "number"),
    [
        ("Can you call me back at 555?", True),
        ("Call 555-234-5678.", True),
        ("My order number is AB12345.", True),
        ("It costs $10.", True),
        ("The code is 12/34", True),
        ("I have 2 kids.", False),
        ("We arrive at 10:30 AM.", False),
        ("Hello there.", False),
        ("", False),
        (None, False),
    ],
)
def test_ends_on_number(transcript: str | None, number: bool) -> None:
    assert ends_on_number(transcript) is number


def test_missing_input_counts_as_silence_only_while_the_event_loop_keeps_up() -> None:
    last_audio = 100.0
    now = last_audio + GAP_THRESHOLD_SECONDS + 0.2
    assert audio_gap_ms(now, 0.0, last_audio, 0.0) == pytest.approx(500)
    assert audio_gap_ms(last_audio + GAP_THRESHOLD_SECONDS / 2, 0.0, last_audio, 0.0) is None  # too short
    # the check itself ran late: the loop was stalled and the client's frames may be unread in the socket
    assert audio_gap_ms(now, GAP_CHECK_SECONDS, last_audio, 0.0) is None
    # counted once: a later check reports only the time since the previous report
    assert audio_gap_ms(now + 0.1, 0.0, last_audio, now) == pytest.approx(100)
