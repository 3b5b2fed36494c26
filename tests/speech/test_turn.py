from __future__ import annotations

import numpy as np
import pytest

from tests.speech.fixtures import isolated_settings, piper_speech, silence
from voxgate.speech.audio_features import fixed_window, log_mel_spectrogram, mel_filter_bank
from voxgate.speech.base import TurnDetector
from voxgate.speech.turn_smart import SmartTurnDetector

COMPLETE = [
    "What's the weather in London tomorrow?",
    "Can you book a table for two at seven?",
    "I'd like to cancel my order.",
    "Is the shop open on Sunday?",
]
CUT_MID_WAY = [
    "What's the weather in London and",
    "Can you book a table for two at",
    "I'd like to cancel my",
    "Is the shop open on",
]


# --- features (no model) -------------------------------------------------------------------------
def test_log_mel_shape_and_range() -> None:
    features = log_mel_spectrogram(fixed_window(piper_speech(COMPLETE[0]), 8.0), normalize=True)
    assert features.shape == (80, 800)
    assert features.dtype == np.float32
    # Whisper's scaling: at most 8 (log10 units) of dynamic range, mapped through (x + 4) / 4
    assert features.max() - features.min() <= 2.0 + 1e-6


def test_a_tone_lights_up_the_mel_band_that_contains_it() -> None:
    time = np.arange(16_000 * 2) / 16_000
    filters = mel_filter_bank()
    fft_freqs = np.linspace(0, 8_000, filters.shape[1])
    for hz in (300.0, 1_000.0, 3_000.0):
        tone = (0.5 * np.sin(2 * np.pi * hz * time)).astype(np.float32)
        features = log_mel_spectrogram(tone)
        loudest_band = int(features[:, 10:-10].mean(axis=1).argmax())
        band_peak_hz = fft_freqs[filters[loudest_band].argmax()]
        assert abs(band_peak_hz - hz) < 0.15 * hz + 50, (hz, band_peak_hz)


def test_mel_filters_are_ordered_triangles() -> None:
    filters = mel_filter_bank()
    assert filters.shape == (80, 201)
    assert (filters >= 0).all()
    peaks = filters.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()
    assert (filters.sum(axis=1) > 0).all()


def test_fixed_window_left_pads_and_keeps_the_tail() -> None:
    short = np.ones(100, dtype=np.float32)
    window = fixed_window(short, 0.01)
    assert len(window) == 160 and window[:60].sum() == 0 and window[60:].sum() == 100
    long = np.arange(1_000, dtype=np.float32)
    np.testing.assert_array_equal(fixed_window(long, 0.01), long[-160:])
    assert fixed_window(np.zeros(0, dtype=np.float32), 0.01).shape == (160,)


def test_bad_feature_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="mono"):
        log_mel_spectrogram(np.zeros((2, 16_000), dtype=np.float32))
    with pytest.raises(ValueError, match="too short"):
        log_mel_spectrogram(np.zeros(10, dtype=np.float32))


# --- the model -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def detector():
    turn = SmartTurnDetector(isolated_settings())
    yield turn
    turn.close()


@pytest.mark.models
def test_implements_the_protocol(detector: SmartTurnDetector) -> None:
    assert isinstance(detector, TurnDetector)


@pytest.mark.models
async def test_complete_questions_score_higher_than_sentences_cut_mid_way(
    detector: SmartTurnDetector,
) -> None:
    async def score(text: str) -> float:
        return await detector.completion_probability(np.concatenate([piper_speech(text), silence(0.2)]))

    complete = [await score(text) for text in COMPLETE]
    cut = [await score(text) for text in CUT_MID_WAY]
    assert all(0.0 <= p <= 1.0 for p in complete + cut)
    assert np.mean(complete) > 0.7, complete
    assert np.mean(complete) > np.mean(cut) + 0.1, (complete, cut)


@pytest.mark.models
async def test_only_the_last_eight_seconds_count(detector: SmartTurnDetector) -> None:
    question = np.concatenate([piper_speech(COMPLETE[0]), silence(0.2)])
    padded = np.concatenate([piper_speech(CUT_MID_WAY[1]), silence(8.0), question])
    assert await detector.completion_probability(padded) == pytest.approx(
        await detector.completion_probability(fixed_window(padded, 8.0)), abs=1e-6
    )


@pytest.mark.models
async def test_empty_audio_is_not_complete(detector: SmartTurnDetector) -> None:
    assert await detector.completion_probability(np.zeros(0, dtype=np.float32)) == 0.0
    assert detector.executor.stats()["queue_depth"] == 0
