"""Minimal backend for a browser voice client: it keeps the voxgate API key and hands the page a
one-time token (PROTOCOL.md §2.2). The page then connects to voxgate directly with ``?token=``.

    VOXGATE_URL=http://127.0.0.1:8000 VOXGATE_API_KEY=vg_... python examples/browser/token_server.py
    # open http://127.0.0.1:8080

Standard library plus httpx. In a real app this is one route in your own backend, behind your own
login: anyone who can call it can open voice sessions on your account.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
VOXGATE_URL = os.environ.get("VOXGATE_URL", "http://127.0.0.1:8000").rstrip("/")
API_KEY = os.environ["VOXGATE_API_KEY"]
STATIC = {"/": ("index.html", "text/html"), "/mic-worklet.js": ("mic-worklet.js", "text/javascript")}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/token":
            response = httpx.get(
                f"{VOXGATE_URL}/v1/token",
                params={"expires_in_seconds": 60},
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
            body = response.json()
            if response.is_success:
                ws_base = VOXGATE_URL.replace("http", "ws", 1)
                body = {"token": body["token"], "ws_url": f"{ws_base}/v1/ws"}
            self.reply(response.status_code, json.dumps(body).encode(), "application/json")
        elif self.path in STATIC:
            name, content_type = STATIC[self.path]
            self.reply(200, (HERE / name).read_bytes(), content_type)
        else:
            self.reply(404, b"not found", "text/plain")

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"open http://127.0.0.1:{port} (tokens from {VOXGATE_URL})", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
