"""A local fake of Twilio's REST Calls API (a real HTTP server on loopback): it records each request
(path, ``Authorization``, form fields, repeated fields as lists) and answers with a configurable status
and JSON body."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class FakeTwilioApi:
    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    reply_status: int = 201
    reply_body: dict[str, Any] = field(default_factory=dict)


@contextmanager
def running_fake_twilio() -> Iterator[FakeTwilioApi]:
    api = FakeTwilioApi(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            fields = parse_qs(body)
            api.requests.append(
                {
                    "path": self.path,
                    "authorization": self.headers.get("Authorization"),
                    "form": {k: v[0] for k, v in fields.items()},
                    "lists": fields,
                }
            )
            payload = json.dumps(api.reply_body).encode()
            self.send_response(api.reply_status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
