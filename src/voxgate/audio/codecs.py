"""Wire audio codecs: PCM16 little-endian, G.711 μ-law and G.711 A-law.

Every codec is a table lookup over numpy arrays, never a per-sample Python loop. The G.711 tables
are built once at import time from vectorised ports of the Sun/CCITT reference routines that
CPython's ``audioop`` uses (``st_14linear2ulaw``, ``st_ulaw2linear16``, ``st_linear2alaw``,
``st_alaw2linear16``), so the results are bit-exact with ``audioop.lin2ulaw``/``ulaw2lin``/
``lin2alaw``/``alaw2lin`` at width 2, without depending on ``audioop`` (removed in Python 3.13).

Encoding names are the protocol's own (``audio/pcm``, ``audio/pcmu``, ``audio/pcma``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

import numpy as np
from numpy.typing import NDArray

PCM: Final = "audio/pcm"
PCMU: Final = "audio/pcmu"
PCMA: Final = "audio/pcma"
ENCODINGS: Final[tuple[str, ...]] = (PCM, PCMU, PCMA)

PCM_SAMPLE_RATE: Final = 24_000
G711_SAMPLE_RATE: Final = 8_000

_PCM16_LE: Final = np.dtype("<i2")


class AudioDecodeError(ValueError):
    """A payload cannot be decoded in the stated encoding (maps to the protocol's ``invalid_audio``)."""


class UnknownEncodingError(ValueError):
    """The encoding name is not one of ``audio/pcm``, ``audio/pcmu``, ``audio/pcma``."""


# --- G.711 tables -------------------------------------------------------------------------------

# Every int16 value, ordered by its unsigned 16-bit bit pattern, so that an encode table can be
# indexed with ``pcm.view(np.uint16)`` without widening the samples first.
_ALL_PCM16: Final = np.arange(65_536, dtype=np.uint32).astype(np.uint16).view(np.int16)
_ALL_CODES: Final = np.arange(256, dtype=np.int32)


def _build_ulaw_encode_table() -> NDArray[np.uint8]:
    # audioop feeds the 14-bit linear value (sample >> 2) to st_14linear2ulaw.
    value = _ALL_PCM16.astype(np.int32) >> 2
    negative = value < 0
    magnitude = np.minimum(np.where(negative, -value, value), 8159) + 0x21  # clip, add bias
    segment_ends = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
    segment = np.searchsorted(segment_ends, magnitude, side="left")
    clamped = np.minimum(segment, 7)
    code = np.where(segment >= 8, 0x7F, (clamped << 4) | ((magnitude >> (clamped + 1)) & 0x0F))
    return (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8)


def _build_ulaw_decode_table() -> NDArray[np.int16]:
    code = ~_ALL_CODES & 0xFF
    magnitude = ((((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)) - 0x84
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _build_alaw_encode_table() -> NDArray[np.uint8]:
    # audioop feeds the 13-bit linear value (sample >> 3) to st_linear2alaw.
    value = _ALL_PCM16.astype(np.int32) >> 3
    non_negative = value >= 0
    mask = np.where(non_negative, 0xD5, 0x55)
    magnitude = np.where(non_negative, value, -value - 1)
    segment_ends = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
    segment = np.searchsorted(segment_ends, magnitude, side="left")
    shift = np.where(segment < 2, 1, np.minimum(segment, 7))
    code = np.where(segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F))
    return (code ^ mask).astype(np.uint8)


def _build_alaw_decode_table() -> NDArray[np.int16]:
    code = _ALL_CODES ^ 0x55
    quantised = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    magnitude = np.where(
        segment == 0,
        quantised + 8,
        (quantised + 0x108) << np.maximum(segment - 1, 0),
    )
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


_ULAW_ENCODE: Final = _build_ulaw_encode_table()
_ULAW_DECODE: Final = _build_ulaw_decode_table()
_ALAW_ENCODE: Final = _build_alaw_encode_table()
_ALAW_DECODE: Final = _build_alaw_decode_table()


# --- public API ---------------------------------------------------------------------------------


def sample_rate_for(encoding: str) -> int:
    """Sample rate fixed by a wire encoding: 24000 for ``audio/pcm``, 8000 for G.711."""
    if encoding == PCM:
        return PCM_SAMPLE_RATE
    if encoding in (PCMU, PCMA):
        return G711_SAMPLE_RATE
    raise UnknownEncodingError(f"unknown audio encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")


def bytes_per_sample(encoding: str) -> int:
    """Bytes one sample occupies on the wire: 2 for PCM16, 1 for G.711."""
    sample_rate_for(encoding)  # validates the name
    return 2 if encoding == PCM else 1


def decode_audio(encoding: str, payload: bytes) -> NDArray[np.int16]:
    """Decode raw wire bytes into mono int16 samples at ``sample_rate_for(encoding)``.

    For ``audio/pcm`` the result may be a read-only view over ``payload`` (no copy on
    little-endian hosts); copy it before writing in place. Raises :class:`AudioDecodeError` for an
    odd PCM16 byte count and :class:`UnknownEncodingError` for an unknown encoding.
    """
    if encoding == PCM:
        if len(payload) % 2:
            raise AudioDecodeError(f"audio/pcm payload has an odd byte count ({len(payload)}); PCM16 needs 2")
        return np.frombuffer(payload, dtype=_PCM16_LE).astype(np.int16, copy=False)
    codes = np.frombuffer(payload, dtype=np.uint8)
    if encoding == PCMU:
        return _ULAW_DECODE[codes]
    if encoding == PCMA:
        return _ALAW_DECODE[codes]
    raise UnknownEncodingError(f"unknown audio encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")


def decode_base64_audio(encoding: str, b64: str) -> NDArray[np.int16]:
    """Decode a base64 ``input.audio`` payload; invalid base64 also raises :class:`AudioDecodeError`."""
    try:
        payload = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AudioDecodeError(f"audio is not valid base64: {exc}") from exc
    return decode_audio(encoding, payload)


def encode_audio(encoding: str, pcm: NDArray[np.int16]) -> bytes:
    """Encode mono int16 samples (already at ``sample_rate_for(encoding)``) into wire bytes."""
    samples = np.asarray(pcm)
    if samples.dtype != np.int16:
        raise TypeError(f"encode_audio needs int16 samples, got {samples.dtype}")
    if encoding == PCM:
        return samples.astype(_PCM16_LE, copy=False).tobytes()
    index = samples.view(np.uint16)
    if encoding == PCMU:
        return _ULAW_ENCODE[index].tobytes()
    if encoding == PCMA:
        return _ALAW_ENCODE[index].tobytes()
    raise UnknownEncodingError(f"unknown audio encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")


def apply_volume(pcm: NDArray[np.int16], volume_0_100: float) -> NDArray[np.int16]:
    """Scale int16 samples by the linear gain ``volume / 100`` (protocol ``output.volume``).

    Volume 100 returns ``pcm`` itself (no allocation); volume 0 returns silence. The result is
    rounded to the nearest integer and saturated to the int16 range.
    """
    if not 0 <= volume_0_100 <= 100:
        raise ValueError(f"volume must be within 0..100, got {volume_0_100}")
    if volume_0_100 == 100:
        return pcm
    if volume_0_100 == 0:
        return np.zeros(pcm.shape, dtype=np.int16)
    scaled = pcm.astype(np.float32) * np.float32(volume_0_100 / 100)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype(np.int16)
