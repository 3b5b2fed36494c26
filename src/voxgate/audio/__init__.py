"""Audio primitives: wire codecs, streaming resampling, output pacing and the playout clock."""

from voxgate.audio.codecs import (
    ENCODINGS,
    G711_SAMPLE_RATE,
    PCM,
    PCM_SAMPLE_RATE,
    PCMA,
    PCMU,
    AudioDecodeError,
    UnknownEncodingError,
    apply_volume,
    bytes_per_sample,
    decode_audio,
    decode_base64_audio,
    encode_audio,
    sample_rate_for,
)
from voxgate.audio.pacing import OutputPacer, PlayoutClock
from voxgate.audio.resample import DEFAULT_QUALITY, StreamResampler, resample, to_float32, to_int16

__all__ = [
    "DEFAULT_QUALITY",
    "ENCODINGS",
    "G711_SAMPLE_RATE",
    "PCM",
    "PCMA",
    "PCMU",
    "PCM_SAMPLE_RATE",
    "AudioDecodeError",
    "OutputPacer",
    "PlayoutClock",
    "StreamResampler",
    "UnknownEncodingError",
    "apply_volume",
    "bytes_per_sample",
    "decode_audio",
    "decode_base64_audio",
    "encode_audio",
    "resample",
    "sample_rate_for",
    "to_float32",
    "to_int16",
]
