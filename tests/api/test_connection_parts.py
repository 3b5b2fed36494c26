"""The parts every WebSocket transport shares (voxgate.api.frame_pump, voxgate.api.locked_socket), driven
through a scripted stand-in for Starlette's WebSocket: what is read when, why reading stops, and how a
socket whose client stops reading ends. The live-server suites (tests/realtime, tests/twilio) cover them
on real sockets."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from starlette.websockets import WebSocket, WebSocketState

from voxgate.api.frame_pump import PumpEnd, pump_frames
from voxgate.api.locked_socket import LockedSocket
from voxgate.conversation.input_queue import SessionInputQueue

DISCONNECT = {"type": "websocket.disconnect", "code": 1000}


def text(value: str) -> dict[str, Any]:
    return {"type": "websocket.receive", "text": value}


class ScriptedWebSocket:
    """Frames come from ``incoming``; sends wait for ``writable`` (never set: a client that does not read)
    or fail with ``send_error``."""

    def __init__(self, *frames: dict[str, Any]) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for frame in frames:
            self.incoming.put_nowait(frame)
        self.reading = asyncio.Event()
        self.receives = 0
        self.writable = asyncio.Event()
        self.writable.set()
        self.send_error: Exception | None = None
        self.sent: list[str] = []
        self.closes: list[tuple[int, str]] = []
        self.client_state = WebSocketState.CONNECTED

    async def receive(self) -> dict[str, Any]:
        self.receives += 1
        self.reading.set()
        return await self.incoming.get()

    async def send_text(self, data: str) -> None:
        if self.send_error is not None:
            raise self.send_error
        await self.writable.wait()
        self.sent.append(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closes.append((code, reason))


def real(fake: ScriptedWebSocket) -> WebSocket:
    """The stand-in, typed as what it stands in for."""
    return cast(WebSocket, fake)


class Delivered:
    def __init__(self, queue: SessionInputQueue | None = None) -> None:
        self.frames: list[str | None] = []
        self.queue = queue

    async def __call__(self, frame: str | None) -> None:
        self.frames.append(frame)
        if self.queue is not None:
            self.queue.put_nowait(frame)


async def yield_to_the_loop(times: int = 20) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


# --- the receive loop -----------------------------------------------------------------------------------
async def test_frames_are_delivered_in_order_until_the_client_goes_away() -> None:
    websocket = ScriptedWebSocket(
        text("a"), {"type": "websocket.receive", "bytes": b"\x00"}, text("b"), DISCONNECT
    )
    delivered = Delivered()
    end = await pump_frames(real(websocket), delivered, until=())
    assert end is PumpEnd.DISCONNECTED
    assert delivered.frames == ["a", None, "b"]


async def test_no_frame_is_read_while_the_session_queue_is_full() -> None:
    queue = SessionInputQueue(room=2)
    queue.put_nowait("earlier")
    queue.put_nowait("earlier")
    websocket = ScriptedWebSocket(text("a"), text("b"), DISCONNECT)
    delivered = Delivered(queue)
    pump = asyncio.create_task(pump_frames(real(websocket), delivered, until=(), room=lambda: queue))
    await yield_to_the_loop()
    assert websocket.receives == 0  # the frames wait in the client's socket

    queue.get_nowait()  # the session took one input: room for one frame
    await asyncio.wait_for(websocket.reading.wait(), 5)
    await yield_to_the_loop()
    assert delivered.frames == ["a"] and websocket.receives == 1  # full again: the next one waits

    queue.get_nowait()
    queue.get_nowait()
    assert await asyncio.wait_for(pump, 5) is PumpEnd.DISCONNECTED
    assert delivered.frames == ["a", "b"]


@pytest.mark.parametrize("waiting_for", ["a frame", "room in the queue"])
@pytest.mark.parametrize("signal", ["until", "interrupt"])
async def test_an_event_ends_the_wait(waiting_for: str, signal: str) -> None:
    queue = SessionInputQueue(room=1)
    if waiting_for == "room in the queue":
        queue.put_nowait("earlier")
    websocket = ScriptedWebSocket()
    stop, interrupt = asyncio.Event(), asyncio.Event()
    pump = asyncio.create_task(
        pump_frames(real(websocket), Delivered(), until=(stop,), room=lambda: queue, interrupt=interrupt)
    )
    await yield_to_the_loop()
    (stop if signal == "until" else interrupt).set()
    expected = PumpEnd.STOPPED if signal == "until" else PumpEnd.INTERRUPTED
    assert await asyncio.wait_for(pump, 5) is expected
    assert websocket.receives == (1 if waiting_for == "a frame" else 0)


async def test_a_stop_event_wins_over_an_interrupt_and_is_checked_before_reading() -> None:
    stop, interrupt = asyncio.Event(), asyncio.Event()
    stop.set()
    interrupt.set()
    websocket = ScriptedWebSocket(text("a"))
    end = await pump_frames(real(websocket), Delivered(), until=(stop,), interrupt=interrupt)
    assert end is PumpEnd.STOPPED and websocket.receives == 0


async def test_a_deadline_with_no_frame_times_out_and_no_deadline_waits() -> None:
    websocket = ScriptedWebSocket()
    now = asyncio.get_running_loop().time()
    end = await pump_frames(real(websocket), Delivered(), until=(), deadline=lambda: now)
    assert end is PumpEnd.TIMED_OUT

    websocket = ScriptedWebSocket(text("start"), DISCONNECT)
    started: list[str | None] = []

    async def deliver(frame: str | None) -> None:
        started.append(frame)

    # The deadline applies only until the first frame (read before each frame, like a media stream's start).
    end = await pump_frames(
        real(websocket),
        deliver,
        until=(),
        deadline=lambda: None if started else now + 60,
    )
    assert end is PumpEnd.DISCONNECTED and started == ["start"]


# --- the locked socket ------------------------------------------------------------------------------------
async def test_a_client_that_stops_reading_is_a_slow_consumer_closed_with_1008() -> None:
    websocket = ScriptedWebSocket()
    websocket.writable.clear()
    socket = LockedSocket(real(websocket), stall_seconds=0.05)
    released: list[str] = []
    socket.release_on_close(lambda: released.append("slot"))

    assert await socket.deliver("one") is False
    assert socket.slow_consumer and socket.stalled.is_set() and socket.closed
    assert released == ["slot"]  # at once, before the close
    assert await socket.deliver("two") is False
    await socket.close(1000)
    assert released == ["slot"] and websocket.closes == []

    await socket.finish()
    assert websocket.closes == [(1008, "slow_consumer")]


async def test_a_failed_send_closes_quietly_and_leaves_the_release_to_the_handler() -> None:
    websocket = ScriptedWebSocket()
    websocket.send_error = RuntimeError("the client went away")
    socket = LockedSocket(real(websocket), stall_seconds=5)
    released: list[str] = []
    socket.release_on_close(lambda: released.append("slot"))
    await socket.send_text("one")  # silent
    assert socket.closed and not socket.slow_consumer and released == []
    websocket.client_state = WebSocketState.DISCONNECTED
    await socket.finish()
    assert websocket.closes == []


async def test_the_server_closes_once_and_an_open_socket_is_closed_normally_at_the_end() -> None:
    websocket = ScriptedWebSocket()
    socket = LockedSocket(real(websocket), stall_seconds=5)
    released: list[str] = []
    socket.release_on_close(lambda: released.append("slot"))
    assert await socket.deliver("one") is True
    await socket.close(1012, "server restarting")
    await socket.close(1000)
    await socket.finish()
    assert websocket.sent == ["one"]
    assert websocket.closes == [(1012, "server restarting")] and released == ["slot"]

    untouched = ScriptedWebSocket()
    await LockedSocket(real(untouched), stall_seconds=5).finish()
    assert untouched.closes == [(1000, "")]
