"""Whisper-style log-mel features in numpy (input of the smart-turn end-of-turn model).

The recipe is Whisper's: 25 ms Hann window (400 samples), 10 ms hop (160), centred STFT with reflect
padding, power spectrum, 80 Slaney-normalised triangular mel filters over 0–8 kHz, the last frame
dropped, log10 with a 1e-10 floor, dynamic range clipped to 8 (i.e. 80 dB) below the maximum and
scaled as ``(x + 4) / 4``. Optionally the waveform is first normalised to zero mean and unit
variance (``normalize=True``), which is what the smart-turn model was trained with.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE = 16_000
N_FFT = 400
HOP_LENGTH = 160
N_MELS = 80


def _hz_to_slaney_mel(hz: NDArray[np.float64]) -> NDArray[np.float64]:
    """Slaney mel scale: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    min_log_hz = 1000.0
    min_log_mel = min_log_hz * 3.0 / 200.0
    log_step = np.log(6.4) / 27.0
    linear = hz * 3.0 / 200.0
    logarithmic = min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / log_step
    return np.where(hz >= min_log_hz, logarithmic, linear)


def _slaney_mel_to_hz(mel: NDArray[np.float64]) -> NDArray[np.float64]:
    mel = np.asarray(mel, dtype=np.float64)
    min_log_hz = 1000.0
    min_log_mel = min_log_hz * 3.0 / 200.0
    log_step = np.log(6.4) / 27.0
    linear = mel * 200.0 / 3.0
    logarithmic = min_log_hz * np.exp(log_step * (mel - min_log_mel))
    return np.where(mel >= min_log_mel, logarithmic, linear)


@lru_cache(maxsize=4)
def mel_filter_bank(
    n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE
) -> NDArray[np.float32]:
    """Triangular Slaney-normalised filters, shape ``(n_mels, n_fft // 2 + 1)``."""
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_edges = np.linspace(
        _hz_to_slaney_mel(np.array(0.0)), _hz_to_slaney_mel(np.array(sample_rate / 2.0)), n_mels + 2
    )
    hz_edges = _slaney_mel_to_hz(mel_edges)
    lower, centre, upper = hz_edges[:-2, None], hz_edges[1:-1, None], hz_edges[2:, None]
    rising = (fft_freqs[None, :] - lower) / (centre - lower)
    falling = (upper - fft_freqs[None, :]) / (upper - centre)
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= 2.0 / (upper - lower)  # Slaney area normalisation
    filters.setflags(write=False)
    return filters.astype(np.float32)


@lru_cache(maxsize=2)
def _periodic_hann(length: int) -> NDArray[np.float32]:
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)).astype(np.float32)
    window.setflags(write=False)
    return window


def zero_mean_unit_variance(audio: NDArray[np.float32]) -> NDArray[np.float32]:
    audio = audio.astype(np.float32, copy=False)
    return ((audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)).astype(np.float32)


def log_mel_spectrogram(audio: NDArray[np.float32], *, normalize: bool = False) -> NDArray[np.float32]:
    """``(80, len(audio) // 160)`` log-mel features of 16 kHz mono float audio."""
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {audio.shape}")
    if len(audio) < N_FFT // 2 + 1:
        raise ValueError(f"audio too short for a log-mel spectrogram: {len(audio)} samples")
    samples = zero_mean_unit_variance(audio) if normalize else audio.astype(np.float32, copy=False)
    padded = np.pad(samples, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH]
    spectrum = np.fft.rfft(frames * _periodic_hann(N_FFT), axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    mel = mel_filter_bank() @ power[:-1].T  # drop the last frame, as Whisper does
    log_mel = np.log10(np.maximum(mel, 1e-10))
    log_mel = np.maximum(log_mel, log_mel.max() - 8.0)
    return ((log_mel + 4.0) / 4.0).astype(np.float32)


def fixed_window(
    audio: NDArray[np.float32], seconds: float, sample_rate: int = SAMPLE_RATE
) -> NDArray[np.float32]:
    """The last ``seconds`` of ``audio``, left-padded with zeros to exactly that length."""
    length = round(seconds * sample_rate)
    tail = audio[-length:] if len(audio) else audio
    if len(tail) == length:
        return tail.astype(np.float32, copy=False)
    window = np.zeros(length, dtype=np.float32)
    if len(tail):
        window[-len(tail) :] = tail
    return window
