"""More voices from the one neural English voice: Piper ``joe`` re-voiced with Praat's "Change gender".

No package reachable here ships a second neural English voice, so every catalogue id of the other gender
(and every further id of the same gender) is ``joe`` with its pitch and formants moved
(``praat-parselmouth``: PSOLA resynthesis, about 45 ms of CPU per second of speech, words intact). The
median pitch of each variant was measured on a Piper sentence; ``tests/speech/test_voice_variants.py``
measures it again.

| variant | sounds | median F0 |
|---|---|---|
| (none) | joe: adult male | ~95 Hz |
| ``m2`` | deeper male | ~95 Hz, formants lowered |
| ``m3`` | lighter male | ~140 Hz |
| ``f1`` | female | ~200 Hz |
| ``f2`` | higher female | ~228 Hz |
| ``f3`` | lower, slower female | ~180 Hz |
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxgate.speech.base import PcmAudio


@dataclass(frozen=True, slots=True)
class GenderChange:
    """Arguments of Praat's ``Change gender`` (pitch floor/ceiling for the analysis are fixed)."""

    formant_shift: float
    new_pitch_median: float
    """Hz; 0 keeps the original pitch."""
    pitch_range: float = 1.0
    duration: float = 1.0
    female: bool = True


VARIANTS: dict[str, GenderChange] = {
    "f1": GenderChange(formant_shift=1.17, new_pitch_median=200, pitch_range=1.1),
    "f2": GenderChange(formant_shift=1.22, new_pitch_median=230),
    "f3": GenderChange(formant_shift=1.12, new_pitch_median=180, pitch_range=1.2, duration=1.05),
    "m2": GenderChange(formant_shift=0.95, new_pitch_median=95, female=False),
    "m3": GenderChange(
        formant_shift=1.05, new_pitch_median=140, pitch_range=0.9, duration=0.95, female=False
    ),
}
PITCH_FLOOR_HZ = 75
PITCH_CEILING_HZ = 600


def variants_available() -> bool:
    """Whether praat-parselmouth is installed (a pinned dependency; without it every variant is spoken
    by its base voice, with a warning at start-up)."""
    try:
        import parselmouth  # noqa: F401
    except ImportError:
        return False
    return True


def apply_variant(pcm: PcmAudio, sample_rate: int, variant: str) -> PcmAudio:
    """``pcm`` (int16 mono) re-voiced as ``variant``; same sample rate, length scaled by its duration."""
    import parselmouth
    from parselmouth.praat import call

    change = VARIANTS[variant]
    if pcm.size < sample_rate // 20:  # too short to analyse the pitch of: left as is
        return pcm
    sound = parselmouth.Sound(pcm.astype(np.float64) / 32768.0, sampling_frequency=sample_rate)
    changed = call(
        sound, "Change gender", PITCH_FLOOR_HZ, PITCH_CEILING_HZ, change.formant_shift,
        change.new_pitch_median, change.pitch_range, change.duration,
    )  # fmt: skip
    samples = np.clip(changed.values[0], -1.0, 1.0)
    return (samples * 32767.0).astype(np.int16)


def median_pitch_hz(pcm: PcmAudio, sample_rate: int) -> float:
    """The median fundamental frequency of the voiced parts of ``pcm`` (0 when nothing is voiced): the
    measure that tells a female voice (~165-255 Hz) from a male one (~85-155 Hz)."""
    import parselmouth

    sound = parselmouth.Sound(pcm.astype(np.float64) / 32768.0, sampling_frequency=sample_rate)
    frequencies = sound.to_pitch(pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ).selected_array[
        "frequency"
    ]
    voiced = frequencies[frequencies > 0]
    return float(np.median(voiced)) if voiced.size else 0.0
