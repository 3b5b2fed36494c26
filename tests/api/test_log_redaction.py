"""One-time tokens never reach the server log: uvicorn's request lines show ``token=***``.

The end-to-end test runs a real ``voxgate serve`` process (tests/live_server.py, speech doubles) and
reads its log file after it has stopped (so every line is flushed).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from uvicorn.logging import AccessFormatter
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.live_server import STARTUP_TIMEOUT_SECONDS, LiveServer, free_port
from tests.realtime.conftest import doubles_env
from voxgate.api.log_redaction import QuerySecretRedactionFilter, redact_query_secrets, redacting_log_config

WS_TIMEOUT_SECONDS = 15


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/v1/ws?token=abc.DEF-123_x", "/v1/ws?token=***"),
        ("/v1/ws?product=voice_agent&token=abc&x=1", "/v1/ws?product=voice_agent&token=***&x=1"),
        (
            '"WebSocket /twilio/media?TOKEN=s3cr%2Bet" [accepted]',
            '"WebSocket /twilio/media?TOKEN=***" [accepted]',
        ),
        ("/v1/ws?token=", "/v1/ws?token=***"),
        ("/v1/ws?token=a#frag", "/v1/ws?token=***#frag"),
        ("/v1/ws?%74oken=abc", "/v1/ws?%74oken=***"),
        ("/v1/ws?x=1&TOKEN=abc", "/v1/ws?x=1&TOKEN=***"),
        ("/v1/ws?%54o%6Ben=abc&y=2", "/v1/ws?%54o%6Ben=***&y=2"),
        ("/v1/ws?to+ken=abc&%74okens=def", "/v1/ws?to+ken=abc&%74okens=def"),
        # Not a query parameter named token: left alone.
        ("/v1/token?expires_in_seconds=60", "/v1/token?expires_in_seconds=60"),
        ("/v1/ws?my_token=abc&tokens=def", "/v1/ws?my_token=abc&tokens=def"),
        ("token=abc said the user", "token=abc said the user"),
    ],
)
def test_redact_query_secrets(line: str, expected: str) -> None:
    assert redact_query_secrets(line) == expected


def access_record(path: str) -> logging.LogRecord:
    """A record shaped like uvicorn's h11/httptools access line."""
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 101),
        None,
    )


def test_filter_masks_the_access_line_and_keeps_its_shape() -> None:
    record = access_record("/v1/ws?token=vg_tok_secret&product=voice_agent")
    assert QuerySecretRedactionFilter().filter(record) is True
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(
        record
    )
    assert (
        line == '127.0.0.1:5000 - "GET /v1/ws?token=***&product=voice_agent HTTP/1.1" 101 Switching Protocols'
    )


def test_log_config_puts_the_filter_on_every_handler_without_touching_uvicorns() -> None:
    from uvicorn.config import LOGGING_CONFIG

    before = json.dumps(LOGGING_CONFIG, sort_keys=True)
    config = redacting_log_config()
    assert json.dumps(LOGGING_CONFIG, sort_keys=True) == before
    assert set(config["handlers"]) == {"default", "access"}
    for handler in config["handlers"].values():
        assert handler["filters"] == ["voxgate_redact_query_secrets"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "server", env=doubles_env())
    with live:
        yield live


def mint_token(rest: httpx.Client) -> str:
    response = rest.get("/v1/token", params={"expires_in_seconds": 60})
    response.raise_for_status()
    return str(response.json()["token"])


def open_and_end_session(url: str) -> None:
    with connect(url, open_timeout=WS_TIMEOUT_SECONDS) as ws:
        ws.send(json.dumps({"type": "session.update", "session": {"system_prompt": "Be brief."}}))
        assert json.loads(ws.recv(timeout=WS_TIMEOUT_SECONDS))["type"] == "session.ready"
        ws.send(json.dumps({"type": "session.end"}))
        while json.loads(ws.recv(timeout=WS_TIMEOUT_SECONDS))["type"] != "session.ended":
            pass


def refused_session(url: str) -> dict[str, object]:
    """The error event a refused connection receives before it is closed."""
    with connect(url, open_timeout=WS_TIMEOUT_SECONDS) as ws:
        event = json.loads(ws.recv(timeout=WS_TIMEOUT_SECONDS))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=WS_TIMEOUT_SECONDS)
    return dict(event)


def test_server_log_masks_tokens(server: LiveServer) -> None:
    with server.client() as rest:
        used = mint_token(rest)
        over_http = mint_token(rest)
        on_twilio_path = mint_token(rest)

    open_and_end_session(f"{server.ws_url}?token={used}")
    # Redeemed already: refused, and the refused handshake is logged too.
    refused = refused_session(f"{server.ws_url}?product=voice_agent&token={used}")
    assert refused["type"] == "session.error", refused
    # A plain HTTP request with a token in its query string (an access-log line).
    with httpx.Client(base_url=server.base_url, timeout=15) as anonymous:
        assert anonymous.get("/v1/agents", params={"token": over_http}).status_code == 401
    # The Twilio media socket takes its credential from the stream's start message, but a URL that
    # carries one anyway must not leak it either.
    media_url = server.ws_url.replace("/v1/ws", "/twilio/media") + f"?token={on_twilio_path}"
    with connect(media_url, open_timeout=WS_TIMEOUT_SECONDS) as media:
        media.close()
    server.stop()  # every line written and flushed

    log = server.log_text()
    for token in (used, over_http, on_twilio_path):
        assert token not in log
    # The lines are there, masked (so the absence above is not an empty log's).
    assert '"WebSocket /v1/ws?token=***" [accepted]' in log
    assert "/v1/ws?product=voice_agent&token=***" in log
    assert '"GET /v1/agents?token=*** HTTP/1.1" 401' in log
    assert "/twilio/media?token=***" in log
    assert '"GET /v1/token?expires_in_seconds=60 HTTP/1.1" 200' in log


def test_server_log_masks_percent_encoded_token_names(server: LiveServer) -> None:
    """``?%74oken=`` is ``?token=`` to the server (it authenticates), so the log masks it the same way."""
    with server.client() as rest:
        encoded = mint_token(rest)
        upper = mint_token(rest)
    open_and_end_session(f"{server.ws_url}?%74oken={encoded}")
    with httpx.Client(base_url=server.base_url, timeout=15) as anonymous:
        assert anonymous.get(f"/v1/agents?To%4BEN={upper}").status_code == 401
    server.stop()  # every line written and flushed

    log = server.log_text()
    assert encoded not in log and upper not in log
    assert '"WebSocket /v1/ws?%74oken=***" [accepted]' in log
    assert '"GET /v1/agents?To%4BEN=*** HTTP/1.1" 401' in log


def start_workers(server: LiveServer, workers: int) -> subprocess.Popen[bytes]:
    """``voxgate serve --workers N`` with ``server``'s environment, logging to ``server.log_path``;
    returns once a worker answers /healthz."""
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.port = free_port()
    command = [
        sys.executable,
        "-m",
        "voxgate",
        "serve",
        "--workers",
        str(workers),
        "--port",
        str(server.port),
    ]
    with server.log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=server.data_dir, env=server.process_env(), stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    with httpx.Client(base_url=server.base_url, timeout=2) as http:
        while True:
            assert process.poll() is None, server.log_text()
            try:
                if http.get("/healthz").status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the workers did not come up:\n{server.log_text()}"
            time.sleep(0.1)  # polling readiness: there is no event to await


def test_every_worker_process_masks_tokens(tmp_path: Path) -> None:
    """With ``--workers`` the requests are served (and logged) by spawned processes: the redaction must
    be part of the logging configuration each of them applies, not a filter set in the supervisor."""
    redis_url = os.environ.get("VOXGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
    try:
        redis.Redis.from_url(redis_url).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {redis_url}")
    server = LiveServer(
        tmp_path / "workers",
        env=doubles_env(
            VOXGATE_REDIS_URL=redis_url, VOXGATE_REDIS_KEY_PREFIX=f"voxgate-log-redaction-{os.getpid()}"
        ),
    )
    process = start_workers(server, 2)
    try:
        with server.client() as rest:
            token = mint_token(rest)
        open_and_end_session(f"{server.ws_url}?token={token}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    log = server.log_text()
    assert "Started parent process" in log  # really the multi-process supervisor
    assert token not in log
    assert '"WebSocket /v1/ws?token=***" [accepted]' in log
