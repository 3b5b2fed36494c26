"""Remote TTS: ``POST {base}/audio/speech`` (OpenAI-compatible) with ``response_format=pcm``: raw
24 kHz mono int16 little-endian, streamed back chunk by chunk as it arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import numpy as np

from voxgate.config import Settings
from voxgate.protocol.voices import FEMALE_VOICES, is_known_voice
from voxgate.speech.base import PcmAudio, SpeechServiceError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SAMPLE_RATE = 24_000
DEFAULT_FEMALE_VOICE = "nova"
DEFAULT_MALE_VOICE = "onyx"
_CHUNK_BYTES = 4800  # 100 ms at 24 kHz int16


def parse_voice_overrides(voice_map: str | None) -> dict[str, str]:
    """``ivy=openai:shimmer,james=piper:joe`` -> ``{"ivy": "shimmer"}`` (only the ``openai:`` entries)."""
    overrides: dict[str, str] = {}
    for entry in (voice_map or "").split(","):
        spec_id, _, target = entry.strip().partition("=")
        engine, _, voice = target.strip().partition(":")
        if spec_id.strip() and engine.strip() == "openai" and voice.strip():
            overrides[spec_id.strip()] = voice.strip()
    return overrides


class OpenAITTS:
    """:class:`~voxgate.speech.base.TextToSpeech` over an OpenAI-compatible speech endpoint."""

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str | None = None,
        timeout_seconds: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = (
            base_url or settings.tts_base_url or settings.openai_base_url or DEFAULT_BASE_URL
        ).rstrip("/")
        self.model = settings.openai_tts_model
        self._overrides = parse_voice_overrides(settings.voice_map)
        headers = {"Authorization": f"Bearer {settings.openai_api_key}"} if settings.openai_api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout_seconds, headers=headers, transport=transport)

    def has_voice(self, voice_id: str) -> bool:
        return voice_id in self._overrides or is_known_voice(voice_id)

    def remote_voice(self, voice_id: str) -> str:
        if voice_id in self._overrides:
            return self._overrides[voice_id]
        return DEFAULT_FEMALE_VOICE if voice_id in FEMALE_VOICES else DEFAULT_MALE_VOICE

    async def synthesize(self, text: str, *, voice_id: str) -> AsyncIterator[PcmAudio]:
        if not text.strip():
            return
        url = f"{self.base_url}/audio/speech"
        body = {
            "model": self.model,
            "input": text,
            "voice": self.remote_voice(voice_id),
            "response_format": "pcm",
        }
        leftover = b""
        try:
            async with self._client.stream("POST", url, json=body) as response:
                if response.status_code != 200:
                    detail = (await response.aread())[:300].decode("utf-8", "replace")
                    raise SpeechServiceError(f"TTS at {url} answered HTTP {response.status_code}: {detail}")
                async for data in response.aiter_bytes(_CHUNK_BYTES):
                    data = leftover + data
                    usable = len(data) - len(data) % 2
                    leftover = data[usable:]
                    if usable:
                        yield np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
        except httpx.TimeoutException as exc:
            raise SpeechServiceError(f"TTS at {url} timed out") from exc
        except httpx.HTTPError as exc:
            raise SpeechServiceError(f"cannot reach TTS at {url}: {exc}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()
