"""espeak-ng text-to-speech (``VOXGATE_TTS=espeak``): a near-free formant voice, and the fallback engine.

Each call runs ``espeak-ng --stdout --stdin`` as an async subprocess (the text goes through stdin, so
it can never be read as an option) and streams its WAV output as int16 chunks while espeak is still
speaking. Closing the iterator or cancelling the consumer kills the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import struct
from collections.abc import AsyncIterator

import numpy as np
import soxr

from voxgate.config import Settings
from voxgate.speech.base import PcmAudio
from voxgate.speech.voice_map import VoiceMap, default_voice

ESPEAK_SAMPLE_RATE = 22_050
"""What espeak-ng's own voices produce (mbrola voices would be 16 kHz; those are resampled)."""
READ_BYTES = 8_192
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class EspeakError(RuntimeError):
    pass


class _WavStreamParser:
    """Incremental RIFF/WAVE parser for espeak-ng's streamed output (its size fields are placeholders)."""

    def __init__(self) -> None:
        self._buffer = b""
        self.sample_rate: int | None = None
        self.channels = 1
        self._in_data = False

    def feed(self, data: bytes) -> PcmAudio | None:
        self._buffer += data
        if not self._in_data and not self._parse_header():
            return None
        usable = len(self._buffer) // (2 * self.channels) * (2 * self.channels)
        if usable == 0:
            return None
        samples = np.frombuffer(self._buffer[:usable], dtype="<i2").astype(np.int16)
        self._buffer = self._buffer[usable:]
        if self.channels > 1:
            samples = samples.reshape(-1, self.channels).mean(axis=1).astype(np.int16)
        return samples

    def _parse_header(self) -> bool:
        buffer = self._buffer
        if len(buffer) < 12:
            return False
        if buffer[:4] != b"RIFF" or buffer[8:12] != b"WAVE":
            raise EspeakError("espeak-ng did not produce WAV output")
        position = 12
        while len(buffer) >= position + 8:
            chunk_id = buffer[position : position + 4]
            (size,) = struct.unpack("<I", buffer[position + 4 : position + 8])
            if chunk_id == b"data":
                if self.sample_rate is None:
                    raise EspeakError("espeak-ng WAV output has no fmt chunk")
                self._buffer = buffer[position + 8 :]
                self._in_data = True
                return True
            if len(buffer) < position + 8 + size:
                return False
            if chunk_id == b"fmt ":
                _format, channels, rate, _byte_rate, _align, bits = struct.unpack(
                    "<HHIIHH", buffer[position + 8 : position + 24]
                )
                if bits != 16:
                    raise EspeakError(f"espeak-ng produced {bits}-bit audio; expected 16-bit PCM")
                self.channels, self.sample_rate = channels, rate
            position += 8 + size + (size & 1)
        return False


class EspeakTTS:
    """``EspeakTTS(settings)``. Construction only checks that the ``espeak-ng`` binary exists."""

    sample_rate = ESPEAK_SAMPLE_RATE

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        voice_map: VoiceMap | None = None,
        binary: str = "espeak-ng",
        words_per_minute: int = 175,
    ) -> None:
        settings = settings or Settings()
        path = shutil.which(binary)
        if path is None:
            raise EspeakError(
                f"{binary} is not installed (VOXGATE_TTS=espeak needs it): apt-get install espeak-ng"
            )
        self.binary = path
        self.words_per_minute = words_per_minute
        self.voice_map = voice_map or VoiceMap.from_settings(settings, "espeak")

    def has_voice(self, voice_id: str) -> bool:
        return self.voice_map.has_voice(voice_id)

    def espeak_voice(self, voice_id: str) -> str:
        """The espeak-ng voice for a spec id (ids mapped onto Piper fall back to the espeak default)."""
        installed = self.voice_map.resolve(voice_id)
        if installed is None:
            raise ValueError(f"unknown voice {voice_id!r}")
        if installed.engine != "espeak":
            installed = default_voice(voice_id, "espeak")
        return installed.name

    async def synthesize(self, text: str, *, voice_id: str) -> AsyncIterator[PcmAudio]:
        async with contextlib.aclosing(self.speak(text, self.espeak_voice(voice_id))) as stream:
            async for chunk in stream:
                yield chunk

    async def speak(self, text: str, voice: str) -> AsyncIterator[PcmAudio]:
        """Speak ``text`` with espeak-ng voice ``voice``; int16 chunks at ``sample_rate``."""
        text = _CONTROL_CHARACTERS.sub(" ", text).strip()
        if not text:
            return
        process = await asyncio.create_subprocess_exec(
            self.binary, "--stdout", "--stdin", "-v", voice, "-s", str(self.words_per_minute),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        parser = _WavStreamParser()
        resampler: soxr.ResampleStream | None = None
        produced = 0
        try:
            try:
                process.stdin.write(text.encode("utf-8"))
                await process.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass  # espeak exited before reading (e.g. unknown voice): its exit status says why
            finally:
                process.stdin.close()
            while data := await process.stdout.read(READ_BYTES):
                samples = parser.feed(data)
                if samples is None or len(samples) == 0:
                    continue
                if parser.sample_rate != self.sample_rate:
                    if resampler is None:
                        resampler = soxr.ResampleStream(
                            parser.sample_rate, self.sample_rate, 1, dtype="int16"
                        )
                    samples = resampler.resample_chunk(samples)
                produced += len(samples)
                if len(samples):
                    yield samples
            if resampler is not None:
                tail = resampler.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
                if len(tail):
                    yield tail
            stderr = await process.stderr.read()
            code = await process.wait()
            if code != 0 or produced == 0:
                message = stderr.decode("utf-8", "replace").strip() or f"exit status {code}"
                raise EspeakError(f"espeak-ng failed for voice {voice!r}: {message}")
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                # drain what the dead process left in its pipes so the transport closes now, not at GC
                await process.stdout.read()
                await process.stderr.read()
                await process.wait()
