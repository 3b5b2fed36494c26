from __future__ import annotations

import numpy as np
import pytest

from tests.speech.fixtures import espeak_speech, isolated_settings, join_with_pauses, silence
from voxgate.speech.base import VoiceActivityDetector, VoiceActivityStream
from voxgate.speech.models import resolve_model
from voxgate.speech.vad_silero import FRAME_SAMPLES, SileroVAD

SENTENCES = ["Hello, I would like to book a table.", "For two people, please.", "Tomorrow at eight o'clock."]
FRAME_SECONDS = FRAME_SAMPLES / 16_000


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD(isolated_settings())


def frame_probabilities(stream: VoiceActivityStream, audio: np.ndarray) -> np.ndarray:
    usable = len(audio) // FRAME_SAMPLES * FRAME_SAMPLES
    frames = audio[:usable].reshape(-1, FRAME_SAMPLES)
    return np.array([stream.speech_probability(frame) for frame in frames])


def speech_segments(probabilities: np.ndarray, *, threshold: float = 0.5, min_silence_frames: int = 10):
    """(start, end) in seconds of runs above threshold, bridging gaps shorter than min_silence_frames."""
    segments: list[list[int]] = []
    for index in np.flatnonzero(probabilities >= threshold):
        if segments and index - segments[-1][1] <= min_silence_frames:
            segments[-1][1] = index
        else:
            segments.append([index, index])
    return [(start * FRAME_SECONDS, (end + 1) * FRAME_SECONDS) for start, end in segments]


def audible_span(clip: np.ndarray, offset: int) -> tuple[float, float]:
    loud = np.flatnonzero(np.abs(clip) > 0.01)
    return (offset + loud[0]) / 16_000, (offset + loud[-1]) / 16_000


def test_implements_the_protocol(vad: SileroVAD) -> None:
    assert isinstance(vad, VoiceActivityDetector)
    stream = vad.create_stream()
    assert isinstance(stream, VoiceActivityStream)
    assert stream.frame_samples == 512


def test_finds_speech_and_pause_boundaries(vad: SileroVAD) -> None:
    clips = [espeak_speech(sentence) for sentence in SENTENCES]
    audio, spans = join_with_pauses(clips, pause_seconds=1.0, lead=0.8, tail=0.8)
    segments = speech_segments(frame_probabilities(vad.create_stream(), audio))
    assert len(segments) == len(SENTENCES), segments
    for (start, end), clip, (offset, _) in zip(segments, clips, spans, strict=True):
        true_start, true_end = audible_span(clip, offset)
        assert abs(start - true_start) < 0.15, (start, true_start)
        assert abs(end - true_end) < 0.3, (end, true_end)


def test_silence_and_faint_noise_are_not_speech(vad: SileroVAD) -> None:
    rng = np.random.default_rng(7)
    noise = (rng.standard_normal(16_000 * 2) * 0.003).astype(np.float32)
    audio = np.concatenate([silence(1.0), noise])
    probabilities = frame_probabilities(vad.create_stream(), audio)
    assert probabilities.max() < 0.3


def test_streams_are_independent_and_reset_restores_the_initial_state(vad: SileroVAD) -> None:
    speech = espeak_speech(SENTENCES[0])[: FRAME_SAMPLES * 40]
    reference = frame_probabilities(vad.create_stream(), speech)
    first, second = vad.create_stream(), vad.create_stream()
    frames = speech.reshape(-1, FRAME_SAMPLES)
    interleaved_first, interleaved_second = [], []
    for frame in frames:  # two sessions interleaved on one shared model
        interleaved_first.append(first.speech_probability(frame))
        interleaved_second.append(second.speech_probability(frame[::-1].copy()))
    np.testing.assert_allclose(interleaved_first, reference, atol=1e-5)
    first.reset()
    np.testing.assert_allclose(frame_probabilities(first, speech), reference, atol=1e-5)


def test_wrong_frame_size_is_a_clear_error(vad: SileroVAD) -> None:
    stream = vad.create_stream()
    with pytest.raises(ValueError, match="512"):
        stream.speech_probability(np.zeros(480, dtype=np.float32))


def test_state_interface_export_gives_the_same_boundaries(vad: SileroVAD) -> None:
    """The silero-vad/pipecat export (``state`` + ``sr`` inputs) is accepted as a model path too."""
    pipecat_file = (
        resolve_model("smart-turn-v3.2", isolated_settings()).parents[3] / "vad/data/silero_vad.onnx"
    )
    if not pipecat_file.is_file():
        pytest.skip("pipecat's silero_vad.onnx is not installed")
    other = SileroVAD(isolated_settings(), model_path=pipecat_file)
    clips = [espeak_speech(sentence) for sentence in SENTENCES]
    audio, _ = join_with_pauses(clips, pause_seconds=1.0, lead=0.8, tail=0.8)
    ours = speech_segments(frame_probabilities(vad.create_stream(), audio))
    theirs = speech_segments(frame_probabilities(other.create_stream(), audio))
    assert len(theirs) == len(ours)
    for (a_start, a_end), (b_start, b_end) in zip(ours, theirs, strict=True):
        assert abs(a_start - b_start) < 0.15 and abs(a_end - b_end) < 0.3


def test_rejects_a_model_that_is_not_silero() -> None:
    smart_turn = resolve_model("smart-turn-v3.2", isolated_settings())
    with pytest.raises(ValueError, match="not a Silero VAD"):
        SileroVAD(isolated_settings(), model_path=smart_turn)
