"""Streaming sample-rate conversion (soxr) and int16 <-> float32 sample conversion.

Quality choice (measured on this machine with ``soxr`` 1.1.0, 20 ms chunks; "held back" is the
output the stream withholds at the start, i.e. the latency the filter adds once per stream):

=================  =============  =============  ==============  ===================
conversion         HQ held back   MQ held back   LQ held back    MQ 1 kHz tone SNR
=================  =============  =============  ==============  ===================
24000 -> 16000     21.3 ms        15.0 ms        6.2 ms          128 dB
8000 -> 16000      66.2 ms        25.8 ms        60.0 ms         123 dB
22050 -> 24000     33.2 ms        29.6 ms        0.9 ms          113 dB
22050 -> 8000      55.5 ms        66.2 ms        20.6 ms         106 dB
24000 -> 8000      21.2 ms        15.0 ms        25.0 ms         131 dB
=================  =============  =============  ==============  ===================

Cost is 5-9 µs per 20 ms chunk whatever the quality (call overhead dominates), so delay and
fidelity decide. MQ keeps a flat passband to 85 % of Nyquist and an SNR far above 16-bit
resolution (96 dB) with the lowest delay in most cases; LQ rolls off about 8 dB near the top of
the band. :data:`DEFAULT_QUALITY` is therefore ``"MQ"``.
"""

from __future__ import annotations

from typing import Final, Literal, TypeVar

import numpy as np
import soxr
from numpy.typing import NDArray

Quality = Literal["VHQ", "HQ", "MQ", "LQ", "QQ"]
DEFAULT_QUALITY: Final[Quality] = "MQ"

_SampleT = TypeVar("_SampleT", np.int16, np.float32)
_SUPPORTED_DTYPES: Final = (np.dtype(np.int16), np.dtype(np.float32))
_INT16_SCALE: Final = np.float32(32768.0)


def to_float32(pcm16: NDArray[np.int16]) -> NDArray[np.float32]:
    """int16 samples -> float32 in [-1, 1) (divides by 32768)."""
    return np.asarray(pcm16, dtype=np.int16).astype(np.float32) / _INT16_SCALE


def to_int16(samples: NDArray[np.floating]) -> NDArray[np.int16]:
    """float samples in [-1, 1] -> int16 (multiplies by 32768, rounds, saturates)."""
    scaled = np.asarray(samples, dtype=np.float32) * _INT16_SCALE
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype(np.int16)


def resample(
    samples: NDArray[_SampleT], in_rate: int, out_rate: int, *, quality: Quality = "HQ"
) -> NDArray[_SampleT]:
    """One-shot conversion of a whole mono signal (files, fixtures); streams use StreamResampler."""
    if in_rate == out_rate:
        return samples
    _check_chunk(samples, None)
    return soxr.resample(samples, in_rate, out_rate, quality=quality)


def _check_chunk(chunk: np.ndarray, expected: np.dtype | None) -> None:
    if chunk.ndim != 1:
        raise ValueError(f"resampler takes mono 1-D audio, got shape {chunk.shape}")
    if chunk.dtype not in _SUPPORTED_DTYPES:
        raise TypeError(f"resampler takes int16 or float32 samples, got {chunk.dtype}")
    if expected is not None and chunk.dtype != expected:
        raise TypeError(f"this resampler stream carries {expected} samples, got {chunk.dtype}")


class StreamResampler:
    """Chunk-by-chunk mono resampler that keeps filter state between chunks.

    The sample type (int16 or float32) is fixed by ``dtype`` or, if omitted, by the first chunk;
    output has the same type. With equal rates every chunk is returned unchanged (no copy).
    ``flush()`` drains the filter tail at the end of a stream and leaves the resampler ready for a
    new stream; ``reset()`` drops buffered input without output (e.g. on barge-in).
    """

    def __init__(
        self,
        in_rate: int,
        out_rate: int,
        *,
        dtype: type[np.int16] | type[np.float32] | None = None,
        quality: Quality = DEFAULT_QUALITY,
    ) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.quality: Quality = quality
        self._dtype: np.dtype | None = np.dtype(dtype) if dtype is not None else None
        if self._dtype is not None and self._dtype not in _SUPPORTED_DTYPES:
            raise TypeError(f"resampler takes int16 or float32 samples, not {self._dtype}")
        self._stream: soxr.ResampleStream | None = None

    @property
    def passthrough(self) -> bool:
        """True when the rates are equal and chunks go through untouched."""
        return self.in_rate == self.out_rate

    def _stream_for(self, chunk: np.ndarray) -> soxr.ResampleStream:
        _check_chunk(chunk, self._dtype)
        if self._stream is None:
            self._dtype = chunk.dtype
            self._stream = soxr.ResampleStream(
                self.in_rate, self.out_rate, 1, dtype=chunk.dtype.name, quality=self.quality
            )
        return self._stream

    def process(self, chunk: NDArray[_SampleT]) -> NDArray[_SampleT]:
        """Resample one chunk; may return fewer (even zero) samples while the filter fills."""
        if self.passthrough:
            _check_chunk(chunk, self._dtype)
            return chunk
        stream = self._stream_for(chunk)
        return stream.resample_chunk(np.ascontiguousarray(chunk))

    def flush(self) -> np.ndarray:
        """Return the samples still held in the filter and start a fresh stream."""
        dtype = self._dtype or np.dtype(np.int16)
        if self.passthrough or self._stream is None:
            return np.zeros(0, dtype=dtype)
        tail = self._stream.resample_chunk(np.zeros(0, dtype=dtype), last=True)
        self._stream = None
        return tail

    def reset(self) -> None:
        """Discard buffered input and filter state without producing output."""
        self._stream = None
