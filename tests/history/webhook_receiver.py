"""A loopback webhook receiver for tests: a real HTTP server in a thread that answers each POST with the
next scripted status (then 200), records what it got and whether its ``X-AAI-Signature`` verifies.

    with WebhookReceiver(secret, answers=[500]) as receiver:
        ... receiver.url ...
        deliveries = await receiver.wait_for(2)   # the first answered 500, the second 200

An answer of :data:`HANG` never answers (until the receiver stops): a receiver that is down but holds the
connection open.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from voxgate.history.signatures import SIGNATURE_HEADER, verify

HANG = -1


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]

    @property
    def delivery_id(self) -> str:
        return self.headers.get("x-aai-delivery-id", "")


class WebhookReceiver:
    def __init__(self, secret: str, answers: list[int] | None = None, port: int = 0) -> None:
        self.secret = secret
        self.answers = list(answers or [])
        self.received: list[Received] = []
        self._condition = threading.Condition()
        self._stopping = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._condition:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                headers = {name.lower(): value for name, value in self.headers.items()}
                verified = verify(receiver.secret, body, headers.get(SIGNATURE_HEADER.lower()))
                with receiver._condition:
                    receiver.received.append(Received(headers, body, verified, status))
                    receiver._condition.notify_all()
                if status == HANG:
                    receiver._stopping.wait()
                    return
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    async def wait_for(self, count: int, within: float = 20.0, **match: Any) -> list[Received]:
        """Wait until ``count`` requests whose event matches ``match`` (e.g. ``type=...``) arrived."""

        def matching() -> list[Received]:
            return [r for r in self.received if all(r.event.get(k) == v for k, v in match.items())]

        def wait() -> list[Received]:
            with self._condition:
                if not self._condition.wait_for(lambda: len(matching()) >= count, timeout=within):
                    raise TimeoutError(f"{len(matching())} of {count} webhook requests in {within} s")
                return matching()

        return await asyncio.to_thread(wait)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
