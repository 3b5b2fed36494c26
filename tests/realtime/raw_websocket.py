"""A WebSocket client that reads only when told to, for tests of clients that never read.

It speaks the protocol with websockets' sans-I/O ``ClientProtocol`` over a plain socket whose receive
buffer is tiny, so once the client stops reading, the server's sends back up within a few hundred KiB.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.uri import parse_uri

RECEIVE_BUFFER_BYTES = 4096


class RawWebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: ClientProtocol):
        self._reader = reader
        self._writer = writer
        self._protocol = protocol
        self._pending: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, url: str, headers: dict[str, str]) -> RawWebSocket:
        uri = parse_uri(url)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (uri.host, uri.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=RECEIVE_BUFFER_BYTES)
        protocol = ClientProtocol(uri, max_size=None)
        request = protocol.connect()
        for name, value in headers.items():
            request.headers[name] = value
        protocol.send_request(request)
        client = cls(reader, writer, protocol)
        await client._flush()
        while protocol.handshake_exc is None and protocol.state.name == "CONNECTING":
            await client._read()
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        return client

    async def _flush(self) -> None:
        self._writer.write(b"".join(self._protocol.data_to_send()))
        await self._writer.drain()

    async def _read(self) -> bool:
        data = await self._reader.read(65536)
        if data:
            self._protocol.receive_data(data)
        else:
            self._protocol.receive_eof()
        for frame in self._protocol.events_received():
            if isinstance(frame, Frame) and frame.opcode is Opcode.TEXT:
                self._pending.append(json.loads(frame.data))
        return bool(data)

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        """Send one text frame; waits while the server is not reading."""
        text = message if isinstance(message, str | bytes) else json.dumps(message)
        self._protocol.send_text(text.encode() if isinstance(text, str) else text)
        await self._flush()

    async def read_until_closed(self, within: float = 15.0) -> tuple[list[dict[str, Any]], Close | None]:
        """Read everything the server sent, up to its close frame: (events, close)."""
        async with asyncio.timeout(within):
            while self._protocol.close_rcvd is None and await self._read():
                pass
        events, self._pending = self._pending, []
        return events, self._protocol.close_rcvd

    async def next_event(self, within: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while not self._pending:
                if not await self._read():
                    raise ConnectionError("the server closed the connection")
        return self._pending.pop(0)

    def close(self) -> None:
        self._writer.transport.abort()
