from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import numpy as np
import pytest

from tests.speech.fixtures import (
    isolated_settings,
    shared_piper_tts,
    shared_whisper_stt,
    to_16k,
    word_error_rate,
)
from voxgate.protocol.voices import BASELINE_VOICES, FEMALE_VOICES, REMOVED_VOICES, VOICE_IDS
from voxgate.speech.base import TextToSpeech
from voxgate.speech.tts_espeak import EspeakError, EspeakTTS
from voxgate.speech.tts_piper import PiperTTS
from voxgate.speech.voice_map import InstalledVoice, VoiceMap, VoiceMapError, parse_voice_map
from voxgate.speech.voice_variants import VARIANTS, median_pitch_hz


async def collect(chunks) -> np.ndarray:
    parts = [chunk async for chunk in chunks]
    assert all(part.dtype == np.int16 and part.ndim == 1 for part in parts)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


async def transcribe_back(audio: np.ndarray, rate: int) -> str:
    return await shared_whisper_stt().transcribe(to_16k(audio.astype(np.float32) / 32768.0, rate))


# --- voice map -----------------------------------------------------------------------------------
def test_default_map_speaks_every_catalogue_id_with_joe_or_a_variant_of_its_gender() -> None:
    voices = VoiceMap("piper")
    for voice_id in VOICE_IDS:
        installed = voices.resolve(voice_id)
        assert installed is not None and installed.model == "joe"
        female = installed.variant is not None and VARIANTS[installed.variant].female
        assert female == (voice_id in FEMALE_VOICES), voice_id
    variants = {voices.resolve(voice_id) for voice_id in VOICE_IDS}
    assert len(variants) == 6  # three female and three male voices
    espeak = VoiceMap("espeak")
    assert espeak.resolve("ivy") == InstalledVoice("espeak", "en-us+f3")
    assert espeak.resolve("james") == InstalledVoice("espeak", "en-us")


@pytest.mark.parametrize(
    ("voice_id", "espeak_voice"),
    [("claire", "en-us+f3"), ("mia", "en-us+f3"), ("giulia", "en-us+f3"), ("pierre", "en-us"),
     ("dmitri", "en-us"), ("arjun", "en-us")],
)  # fmt: skip
def test_hosted_catalogue_ids_map_to_a_voice_of_their_gender(voice_id: str, espeak_voice: str) -> None:
    installed = VoiceMap("piper").resolve(voice_id)
    assert installed is not None and installed.model == "joe"
    assert (installed.variant or "m").startswith("f" if espeak_voice.endswith("+f3") else "m")
    assert VoiceMap("espeak").resolve(voice_id) == InstalledVoice("espeak", espeak_voice)


def test_the_playground_is_told_what_each_id_plays() -> None:
    from voxgate.api.web import _installed_voices

    plays = _installed_voices(isolated_settings().model_copy(update={"tts": "piper"}))
    assert plays["james"] == "Piper joe"
    assert plays["ivy"] == "Piper joe, female variant f1 (~200 Hz)"
    assert plays["david"].startswith("Piper joe, male variant")
    espeak = _installed_voices(isolated_settings().model_copy(update={"tts": "espeak"}))
    assert espeak["ivy"] == "espeak-ng en-us+f3 (formant synthesis)"
    assert _installed_voices(isolated_settings().model_copy(update={"tts": "openai"})) == {}


def test_unknown_and_removed_ids_are_not_voices() -> None:
    voices = VoiceMap("piper")
    for voice_id in ["nobody", "", "IVY", *sorted(REMOVED_VOICES)]:
        assert not voices.has_voice(voice_id)
        assert voices.resolve(voice_id) is None
    assert all(voices.has_voice(voice_id) for voice_id in BASELINE_VOICES)


def test_overrides_from_settings() -> None:
    overrides = parse_voice_map("ivy=espeak:en-us+f3; james = piper:/opt/voices/x.onnx ,")
    assert overrides == {
        "ivy": InstalledVoice("espeak", "en-us+f3"),
        "james": InstalledVoice("piper", "/opt/voices/x.onnx"),
    }
    settings = isolated_settings().model_copy(update={"voice_map": "bella=espeak:en-gb+f2"})
    voices = VoiceMap.from_settings(settings, "piper")
    assert voices.resolve("bella") == InstalledVoice("espeak", "en-gb+f2")
    assert voices.resolve("ivy") == InstalledVoice("piper", "joe+f1")
    assert parse_voice_map("james=piper:joe+m2") == {"james": InstalledVoice("piper", "joe+m2")}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ivy", "expected 'voice_id=engine:voice'"),
        ("sam=piper:joe", "not a voice id"),
        ("ivy=festival:kal", "unknown engine"),
        ("ivy=espeak:-w /tmp/x", "not an espeak-ng voice name"),
        ("ivy=piper:alba", "path to a Piper .onnx"),
        ("ivy=piper:joe+f9", "unknown variant"),
        ("ivy=espeak", "expected 'engine:voice'"),
    ],
)
def test_malformed_voice_map_is_a_clear_error(spec: str, message: str) -> None:
    with pytest.raises(VoiceMapError, match=message):
        parse_voice_map(spec)


# --- espeak-ng -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def espeak() -> EspeakTTS:
    return EspeakTTS(isolated_settings())


def test_espeak_implements_the_protocol(espeak: EspeakTTS) -> None:
    assert isinstance(espeak, TextToSpeech)
    assert espeak.has_voice("ivy") and not espeak.has_voice("sam")


async def test_espeak_streams_speech(espeak: EspeakTTS) -> None:
    chunks = [
        chunk async for chunk in espeak.synthesize("Thanks for calling. How can I help?", voice_id="ivy")
    ]
    audio = np.concatenate(chunks)
    assert len(chunks) > 1  # streamed while espeak speaks, not one buffer at the end
    assert 1.0 < len(audio) / espeak.sample_rate < 5.0
    assert np.abs(audio).max() > 3_000


@pytest.mark.models
async def test_espeak_speech_is_intelligible(espeak: EspeakTTS) -> None:
    """A formant voice through tiny.en: MODELS.md measured ~14 % WER; bound it loosely."""
    pairs = []
    for text in ["Please transfer me to a human agent.", "Your table is booked for tomorrow evening."]:
        audio = await collect(espeak.synthesize(text, voice_id="james"))
        pairs.append((text, await transcribe_back(audio, espeak.sample_rate)))
    assert word_error_rate(pairs) <= 0.35, pairs


async def test_espeak_closing_early_stops_the_process(espeak: EspeakTTS) -> None:
    stream = espeak.synthesize("This is a very long sentence that goes on. " * 40, voice_id="ivy")
    first = await anext(stream)
    assert len(first) > 0
    assert espeak_children()  # still speaking
    await asyncio.wait_for(stream.aclose(), timeout=5)
    assert espeak_children() == []  # killed and reaped, not left for the garbage collector


def espeak_children() -> list[int]:
    """Live (not zombie) espeak-ng child processes of this test process, from /proc."""
    children: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                if "(espeak-ng)" in stat and stat.split(") ", 1)[1][0] != "Z":
                    children.append(int(pid))
    return children


async def test_espeak_errors_and_empty_text(espeak: EspeakTTS) -> None:
    with pytest.raises(EspeakError, match="does not exist"):
        await collect(espeak.speak("hello", "xx-no-such-voice"))
    with pytest.raises(ValueError, match="unknown voice"):
        await collect(espeak.synthesize("hello", voice_id="nobody"))
    assert len(await collect(espeak.synthesize("  \x00 ", voice_id="ivy"))) == 0
    text_that_looks_like_an_option = "--help me please"
    audio = await collect(espeak.synthesize(text_that_looks_like_an_option, voice_id="ivy"))
    assert len(audio) > espeak.sample_rate // 2


# --- Piper ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    return shared_piper_tts()


@pytest.mark.models
def test_piper_implements_the_protocol(piper: PiperTTS) -> None:
    assert isinstance(piper, TextToSpeech)
    assert piper.sample_rate == 22_050
    assert piper.has_voice("ivy") and not piper.has_voice("nobody") and not piper.has_voice("sam")


@pytest.mark.models
async def test_piper_speech_transcribes_back(piper: PiperTTS) -> None:
    pairs = []
    for text in [
        "Your table for two is booked for tomorrow evening.",
        "I'm sorry, could you repeat the order number?",
    ]:
        # Piper samples noise on every call (the same text never renders twice alike), and tiny.en sometimes
        # hears "two is booked" as "two's book" (3 errors in 17 words, seen in full runs): each sentence gets
        # two renders and keeps the better one. A broken voice fails both.
        heard = []
        for _render in range(2):
            audio = await collect(piper.synthesize(text, voice_id="james"))  # joe itself; variants: below
            assert 1.0 < len(audio) / piper.sample_rate < 6.0
            heard.append((text, await transcribe_back(audio, piper.sample_rate)))
        pairs.append(min(heard, key=lambda pair: word_error_rate([pair])))
    assert word_error_rate(pairs) <= 0.15, pairs


@pytest.mark.models
async def test_piper_yields_one_chunk_per_sentence_and_stops_when_closed(piper: PiperTTS) -> None:
    chunks = [chunk async for chunk in piper.synthesize("Hello there. How are you? Fine.", voice_id="ivy")]
    assert len(chunks) == 3
    stream = piper.synthesize("One. Two. Three. Four. Five.", voice_id="ivy")
    await anext(stream)
    await stream.aclose()
    count_after_close = piper.executor.stats()["count"]
    assert piper.executor.queue_depth == 0
    await collect(piper.synthesize("Six.", voice_id="ivy"))
    # start + one sentence + end of sentences: nothing was left running from the closed stream
    assert piper.executor.stats()["count"] == count_after_close + 3


@pytest.mark.models
async def test_piper_unknown_voice_and_unspeakable_text(piper: PiperTTS) -> None:
    with pytest.raises(ValueError, match="unknown voice"):
        await collect(piper.synthesize("hello", voice_id="nobody"))
    assert len(await collect(piper.synthesize(" ... !? ", voice_id="ivy"))) == 0


@pytest.mark.models
async def test_piper_cancelled_consumer_does_not_break_the_provider(piper: PiperTTS) -> None:
    async def consume() -> None:
        await collect(
            piper.synthesize("A sentence that will be cancelled before it is spoken.", voice_id="ivy")
        )

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    audio = await collect(piper.synthesize("Still working.", voice_id="ivy"))
    assert len(audio) > 0


@pytest.mark.models
@pytest.mark.parametrize("voice_id", ["james", "tyler", "david", "ivy", "winter", "bella"])
async def test_each_voice_id_sounds_like_its_gender_and_stays_intelligible(
    piper: PiperTTS, voice_id: str
) -> None:
    text = "Thanks for calling. Your order is on its way and should arrive tomorrow."
    heard: list[str] = []
    for _render in range(2):  # Piper's sampling noise: keep the better of two renders (see above)
        audio = await collect(piper.synthesize(text, voice_id=voice_id))
        pitch = median_pitch_hz(audio, piper.sample_rate)
        if voice_id in FEMALE_VOICES:
            assert 165 <= pitch <= 260, (voice_id, pitch)
        else:
            assert 80 <= pitch <= 155, (voice_id, pitch)
        heard.append(await transcribe_back(audio, piper.sample_rate))
    best = min(heard, key=lambda said: word_error_rate([(text, said)]))
    assert word_error_rate([(text, best)]) <= 0.2, heard


@pytest.mark.models
async def test_voice_map_routes_an_id_to_espeak_inside_the_piper_provider() -> None:
    settings = isolated_settings().model_copy(update={"voice_map": "ivy=espeak:en-us+f3"})
    mixed = await asyncio.to_thread(PiperTTS, settings)
    try:
        espeak_audio = await collect(mixed.synthesize("Hello from espeak.", voice_id="ivy"))
        piper_audio = await collect(mixed.synthesize("Hello from espeak.", voice_id="james"))
        assert len(espeak_audio) > 0 and len(piper_audio) > 0
        assert not np.array_equal(espeak_audio[: len(piper_audio)], piper_audio[: len(espeak_audio)])
        assert mixed.executor.stats()["count"] == 3  # only james went through Piper (start, 1 sentence, end)
    finally:
        mixed.close()
