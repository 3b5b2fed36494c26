"""G.711 and PCM16 codecs: bit-exact with CPython's audioop (the reference, present on 3.11)."""

from __future__ import annotations

import base64
import warnings

import numpy as np
import pytest

from voxgate.audio import (
    AudioDecodeError,
    UnknownEncodingError,
    apply_volume,
    decode_audio,
    decode_base64_audio,
    encode_audio,
    sample_rate_for,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_PCM16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


def test_ulaw_encode_matches_audioop_for_every_pcm16_value() -> None:
    assert encode_audio("audio/pcmu", ALL_PCM16) == audioop.lin2ulaw(ALL_PCM16.tobytes(), 2)


def test_alaw_encode_matches_audioop_for_every_pcm16_value() -> None:
    assert encode_audio("audio/pcma", ALL_PCM16) == audioop.lin2alaw(ALL_PCM16.tobytes(), 2)


def test_ulaw_decode_matches_audioop_for_every_code() -> None:
    decoded = decode_audio("audio/pcmu", ALL_CODES)
    assert decoded.dtype == np.int16
    assert decoded.tobytes() == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_decode_matches_audioop_for_every_code() -> None:
    decoded = decode_audio("audio/pcma", ALL_CODES)
    assert decoded.dtype == np.int16
    assert decoded.tobytes() == audioop.alaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize("encoding", ["audio/pcmu", "audio/pcma"])
def test_g711_code_round_trip_is_identity(encoding: str) -> None:
    # Decoding a code and encoding the result gives the same code back, for every code except the
    # μ-law negative zero (0x7F), which decodes to 0 like positive zero (0xFF).
    codes = np.frombuffer(ALL_CODES, dtype=np.uint8)
    again = np.frombuffer(encode_audio(encoding, decode_audio(encoding, ALL_CODES)), dtype=np.uint8)
    differs = np.flatnonzero(again != codes)
    expected = [0x7F] if encoding == "audio/pcmu" else []
    assert differs.tolist() == expected


@pytest.mark.parametrize("encoding", ["audio/pcmu", "audio/pcma"])
def test_g711_round_trip_error_is_within_quantisation_step(encoding: str) -> None:
    decoded = decode_audio(encoding, encode_audio(encoding, ALL_PCM16)).astype(np.int32)
    error = np.abs(decoded - ALL_PCM16.astype(np.int32))
    # G.711 keeps 4 mantissa bits: the error is below 1/16 of the magnitude plus the smallest step.
    assert np.all(error <= np.abs(ALL_PCM16.astype(np.int32)) / 16 + 16)
    assert np.all(np.sign(decoded[np.abs(ALL_PCM16) > 64]) == np.sign(ALL_PCM16[np.abs(ALL_PCM16) > 64]))


def test_pcm_round_trip_is_little_endian_and_exact() -> None:
    payload = encode_audio("audio/pcm", ALL_PCM16)
    assert payload[:4] == b"\x00\x80\x01\x80"  # -32768, -32767 little-endian
    assert np.array_equal(decode_audio("audio/pcm", payload), ALL_PCM16)


def test_pcm_odd_byte_count_is_a_decode_error() -> None:
    with pytest.raises(AudioDecodeError, match="odd byte count"):
        decode_audio("audio/pcm", b"\x00\x01\x02")


def test_empty_payload_decodes_to_no_samples() -> None:
    for encoding in ("audio/pcm", "audio/pcmu", "audio/pcma"):
        assert decode_audio(encoding, b"").size == 0
        assert encode_audio(encoding, np.zeros(0, dtype=np.int16)) == b""


def test_unknown_encoding_is_rejected_everywhere() -> None:
    with pytest.raises(UnknownEncodingError):
        decode_audio("audio/opus", b"\x00\x00")
    with pytest.raises(UnknownEncodingError):
        encode_audio("audio/opus", np.zeros(2, dtype=np.int16))
    with pytest.raises(UnknownEncodingError):
        sample_rate_for("audio/wav")


def test_encode_refuses_non_int16() -> None:
    with pytest.raises(TypeError):
        encode_audio("audio/pcmu", np.zeros(4, dtype=np.float32))  # type: ignore[arg-type]


def test_sample_rates() -> None:
    assert sample_rate_for("audio/pcm") == 24_000
    assert sample_rate_for("audio/pcmu") == 8_000
    assert sample_rate_for("audio/pcma") == 8_000


def test_decode_base64_audio_valid() -> None:
    samples = np.array([1, -2, 300, -32768], dtype=np.int16)
    b64 = base64.b64encode(samples.astype("<i2").tobytes()).decode()
    assert np.array_equal(decode_base64_audio("audio/pcm", b64), samples)
    assert decode_base64_audio("audio/pcmu", base64.b64encode(b"\xff\x00").decode()).tolist() == [0, -32124]


@pytest.mark.parametrize("bad", ["not base64!", "AAA", "AA==AA", "ÄÖ=="])
def test_decode_base64_audio_rejects_invalid_base64(bad: str) -> None:
    with pytest.raises(AudioDecodeError, match="base64"):
        decode_base64_audio("audio/pcm", bad)


def test_decode_base64_audio_rejects_odd_pcm() -> None:
    with pytest.raises(AudioDecodeError, match="odd"):
        decode_base64_audio("audio/pcm", base64.b64encode(b"abc").decode())


def test_volume_100_returns_the_same_array() -> None:
    pcm = np.array([1, 2, 3], dtype=np.int16)
    assert apply_volume(pcm, 100) is pcm


def test_volume_scales_linearly_and_rounds() -> None:
    pcm = np.array([0, 1000, -1000, 32767, -32768, 3], dtype=np.int16)
    assert apply_volume(pcm, 50).tolist() == [0, 500, -500, 16384, -16384, 2]
    assert apply_volume(pcm, 0).tolist() == [0] * 6
    assert apply_volume(pcm, 25.5).dtype == np.int16


def test_volume_outside_range_is_rejected() -> None:
    with pytest.raises(ValueError):
        apply_volume(np.zeros(3, dtype=np.int16), 101)
    with pytest.raises(ValueError):
        apply_volume(np.zeros(3, dtype=np.int16), -1)
