"""Remote STT: ``POST {base}/audio/transcriptions`` (OpenAI-compatible) with a 16 kHz mono WAV upload."""

from __future__ import annotations

import io
import wave
from collections.abc import Sequence

import httpx
import numpy as np

from voxgate.config import Settings
from voxgate.speech.base import INPUT_SAMPLE_RATE, FloatAudio, SpeechServiceError

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def wav_bytes(audio: FloatAudio, sample_rate: int = INPUT_SAMPLE_RATE) -> bytes:
    """Mono float32 [-1, 1] as a 16-bit PCM WAV file."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    return buffer.getvalue()


class OpenAISTT:
    """:class:`~voxgate.speech.base.SpeechToText` over an OpenAI-compatible transcription endpoint.

    Partial re-decodes (``partial=True``) are skipped: a remote round trip per partial costs more
    than it is worth, so only final utterances are sent.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str | None = None,
        timeout_seconds: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = (
            base_url or settings.stt_base_url or settings.openai_base_url or DEFAULT_BASE_URL
        ).rstrip("/")
        self.model = settings.openai_stt_model
        headers = {"Authorization": f"Bearer {settings.openai_api_key}"} if settings.openai_api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout_seconds, headers=headers, transport=transport)

    async def transcribe(
        self, audio: FloatAudio, *, keyterms: Sequence[str] = (), partial: bool = False
    ) -> str:
        if partial or audio.size == 0:
            return ""
        data = {"model": self.model, "response_format": "json"}
        if keyterms:
            data["prompt"] = ", ".join(keyterms)  # Whisper-style vocabulary hint
        url = f"{self.base_url}/audio/transcriptions"
        try:
            response = await self._client.post(
                url, data=data, files={"file": ("audio.wav", wav_bytes(audio), "audio/wav")}
            )
        except httpx.TimeoutException as exc:
            raise SpeechServiceError(f"STT at {url} timed out") from exc
        except httpx.HTTPError as exc:
            raise SpeechServiceError(f"cannot reach STT at {url}: {exc}") from exc
        if response.status_code != 200:
            raise SpeechServiceError(
                f"STT at {url} answered HTTP {response.status_code}: {response.text[:300]}"
            )
        try:
            payload = response.json()
        except ValueError:
            return response.text.strip()  # response_format=text servers
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str):
            raise SpeechServiceError(f"STT at {url} returned no 'text' field: {response.text[:300]}")
        return text.strip()

    async def aclose(self) -> None:
        await self._client.aclose()
