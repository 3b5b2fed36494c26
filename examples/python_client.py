"""Minimal voxgate client: speak a WAV file to an agent and save what it answers.

    python examples/python_client.py question.wav --key "$VOXGATE_API_KEY" [--agent AGENT_ID]

It does what a backend does for a browser (mint a one-time token with the API key over REST), then
what the browser does (open /v1/ws?token=..., configure the session, stream 50 ms of 24 kHz PCM16 at
real-time pace, play the replies). Needs only httpx, numpy, soxr and websockets (all voxgate deps).
The input WAV may have any rate and channel count (16-bit PCM).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import wave
from pathlib import Path

import httpx
import numpy as np
import soxr
from websockets.asyncio.client import connect

RATE = 24_000
CHUNK = RATE // 20  # 50 ms


def load_pcm16(path: Path) -> np.ndarray:
    with wave.open(str(path)) as wav:
        audio = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.float32) / 32768
        audio = audio.reshape(-1, wav.getnchannels()).mean(axis=1)
        rate = wav.getframerate()
    audio = soxr.resample(audio, rate, RATE) if rate != RATE else audio
    return (np.clip(audio, -1, 1) * 32767).astype("<i2")


def mint_token(base_url: str, api_key: str) -> str:
    """Server side: the API key stays here; the token is all a browser would ever see."""
    response = httpx.get(
        f"{base_url}/v1/token",
        params={"expires_in_seconds": 60},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    response.raise_for_status()
    return str(response.json()["token"])


async def talk(base_url: str, token: str, session: dict[str, object], audio: np.ndarray, out: Path) -> None:
    ws_url = base_url.replace("http", "ws", 1) + f"/v1/ws?token={token}"
    reply_audio: list[bytes] = []
    async with connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "session.update", "session": session}))

        async def stream_microphone() -> None:
            padded = np.concatenate([audio, np.zeros(RATE * 4, "<i2")])  # trailing silence ends the turn
            for start in range(0, padded.size, CHUNK):
                chunk = padded[start : start + CHUNK].tobytes()
                await ws.send(json.dumps({"type": "input.audio", "audio": base64.b64encode(chunk).decode()}))
                await asyncio.sleep(CHUNK / RATE)  # real-time pace, like a microphone
            await ws.send(json.dumps({"type": "session.end"}))

        sender: asyncio.Task[None] | None = None
        async for message in ws:
            event = json.loads(message)
            kind = event["type"]
            if kind == "session.ready":
                print(f"session {event['session_id']} ready")
                sender = asyncio.create_task(stream_microphone())
            elif kind == "transcript.user":
                print(f"you:   {event['text']}")
            elif kind == "transcript.agent":
                print(f"agent: {event['text']}{' (interrupted)' if event.get('interrupted') else ''}")
            elif kind == "reply.audio":
                reply_audio.append(base64.b64decode(event["data"]))
            elif kind == "tool.call":
                print(f"tool:  {event['name']}({json.dumps(event['arguments'])}) -> answered 'unavailable'")
                pending = {"call_id": event["call_id"], "result": json.dumps({"error": "unavailable"})}
                await ws.send(json.dumps({"type": "tool.result", **pending}))
            elif kind == "session.error":
                print(f"error: {event['code']}: {event['message']}")
            elif kind == "session.ended":
                print(f"ended after {event['session_duration_seconds']:.1f} s")
        if sender is not None:
            sender.cancel()
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(b"".join(reply_audio))
    print(f"saved {sum(map(len, reply_audio)) / 2 / RATE:.1f} s of agent audio to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("wav", type=Path, help="what you say (16-bit PCM WAV)")
    parser.add_argument("--key", required=True, help="a voxgate API key")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="voxgate base URL")
    parser.add_argument("--agent", help="a stored agent id (default: an inline prompt)")
    parser.add_argument("--out", type=Path, default=Path("reply.wav"), help="where to save the agent's audio")
    args = parser.parse_args()
    session: dict[str, object] = (
        {"agent_id": args.agent} if args.agent else {"system_prompt": "You are brief and friendly."}
    )
    token = mint_token(args.url.rstrip("/"), args.key)
    asyncio.run(talk(args.url.rstrip("/"), token, session, load_pcm16(args.wav), args.out))


if __name__ == "__main__":
    main()
