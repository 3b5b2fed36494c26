"""Which installed voice speaks each spec voice id (``ivy``, ``james``, ... from protocol/voices.py).

Default: with the Piper provider each id is spoken by the packaged Piper voice ``joe`` or one of its
re-voiced variants (:data:`PIPER_DEFAULTS`, :mod:`voxgate.speech.voice_variants`): female ids by a female
variant, male ids by joe or a male variant, spread so that ids of one gender sound different where the
variants allow. With the espeak-ng provider, female ids use ``en-us+f3`` and the others ``en-us``.
``settings.voice_map`` overrides single ids: ``ivy=espeak:en-us+f3,james=piper:joe+m2,kyle=piper:/v/x.onnx``
(engine ``piper`` takes ``joe`` or a path to a Piper ``.onnx`` with its ``.onnx.json`` beside it, either
with an optional ``+variant`` of ``voice_variants.VARIANTS``; engine ``espeak`` takes an espeak-ng voice
name with an optional ``+variant``). Ids outside the spec catalogue are never voices: ``has_voice`` is
false for them and overriding one is a settings error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from voxgate.config import Settings
from voxgate.protocol.voices import FEMALE_VOICES, VOICE_IDS
from voxgate.speech.voice_variants import VARIANTS

Engine = Literal["piper", "espeak"]
ENGINES: tuple[Engine, ...] = ("piper", "espeak")

PACKAGED_PIPER_VOICE = "joe"
ESPEAK_FEMALE_VOICE = "en-us+f3"
ESPEAK_MALE_VOICE = "en-us"

PIPER_DEFAULTS: dict[str, str] = {
    # female: three variants, spread so that the catalogue's neighbours differ
    "ivy": "joe+f1", "winter": "joe+f2", "bella": "joe+f3", "helen": "joe+f1", "martha": "joe+f3",
    "river": "joe+f2", "emma": "joe+f2", "eleanor": "joe+f1", "claire": "joe+f3", "mia": "joe+f2",
    "giulia": "joe+f1", "lucia": "joe+f2", "alba": "joe+f3", "eve": "joe+f2", "jane": "joe+f1",
    "mary": "joe+f3", "anna": "joe+f1", "vera": "joe+f3",
    # male: joe and two variants
    "james": "joe", "tyler": "joe+m3", "david": "joe+m2", "kyle": "joe+m3", "victor": "joe+m2",
    "arjun": "joe", "dmitri": "joe+m2", "pierre": "joe+m3", "luca": "joe", "mateo": "joe+m3",
    "diego": "joe+m2", "george": "joe", "jean": "joe+m3", "michael": "joe+m2", "charles": "joe",
    "paul": "joe+m3",
}  # fmt: skip
"""The Piper voice of each catalogue id (see the module docstring)."""

_ESPEAK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*(?:\+[A-Za-z0-9_-]+)?$")


class VoiceMapError(ValueError):
    """``VOXGATE_VOICE_MAP`` is malformed; the message names the offending entry."""


@dataclass(frozen=True, slots=True)
class InstalledVoice:
    engine: Engine
    name: str
    """Piper: ``joe`` or a path to an .onnx voice, each with an optional ``+variant``; espeak: an
    espeak-ng voice name (``en-us+f3``)."""

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"

    @property
    def model(self) -> str:
        """Piper: the voice model (``joe`` or a path) without the variant."""
        return self.name.rsplit("+", 1)[0] if self.variant else self.name

    @property
    def variant(self) -> str | None:
        """Piper: the re-voicing variant (``f1``, ``m2``, ...), if any."""
        if self.engine != "piper" or "+" not in self.name:
            return None
        return self.name.rsplit("+", 1)[1]


def default_voice(voice_id: str, engine: Engine) -> InstalledVoice:
    if engine == "piper":
        return InstalledVoice("piper", PIPER_DEFAULTS.get(voice_id, PACKAGED_PIPER_VOICE))
    return InstalledVoice("espeak", ESPEAK_FEMALE_VOICE if voice_id in FEMALE_VOICES else ESPEAK_MALE_VOICE)


def parse_installed_voice(text: str) -> InstalledVoice:
    """``engine:name`` -> ``InstalledVoice``; raises ``VoiceMapError`` with the reason."""
    engine, separator, name = text.strip().partition(":")
    engine, name = engine.strip().lower(), name.strip()
    if not separator or not name:
        raise VoiceMapError(f"{text!r}: expected 'engine:voice', e.g. 'piper:joe' or 'espeak:en-us+f3'")
    if engine == "piper":
        model, plus, variant = name.rpartition("+") if "+" in name else (name, "", "")
        if model != PACKAGED_PIPER_VOICE and not model.endswith(".onnx"):
            raise VoiceMapError(f"{text!r}: a piper voice is 'joe' or a path to a Piper .onnx file")
        if plus and variant not in VARIANTS:
            raise VoiceMapError(f"{text!r}: unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
        return InstalledVoice("piper", name)
    if engine == "espeak":
        if not _ESPEAK_NAME.match(name):
            raise VoiceMapError(f"{text!r}: not an espeak-ng voice name (like 'en-us' or 'en-gb+f3')")
        return InstalledVoice("espeak", name)
    raise VoiceMapError(f"{text!r}: unknown engine {engine!r}; use one of {', '.join(ENGINES)}")


def parse_voice_map(spec: str | None) -> dict[str, InstalledVoice]:
    """Parse ``id=engine:name`` entries separated by commas (or semicolons)."""
    overrides: dict[str, InstalledVoice] = {}
    if not spec:
        return overrides
    for entry in re.split(r"[,;]", spec):
        if not entry.strip():
            continue
        voice_id, separator, target = entry.partition("=")
        voice_id = voice_id.strip().lower()
        if not separator:
            raise VoiceMapError(
                f"VOXGATE_VOICE_MAP entry {entry.strip()!r}: expected 'voice_id=engine:voice'"
            )
        if voice_id not in VOICE_IDS:
            raise VoiceMapError(
                f"VOXGATE_VOICE_MAP entry {entry.strip()!r}: {voice_id!r} is not a voice id of the catalogue"
            )
        try:
            overrides[voice_id] = parse_installed_voice(target)
        except VoiceMapError as exc:
            raise VoiceMapError(f"VOXGATE_VOICE_MAP entry for {voice_id!r}: {exc}") from None
    return overrides


class VoiceMap:
    """Spec voice id -> ``InstalledVoice`` for one TTS provider (``default_engine``)."""

    def __init__(self, default_engine: Engine, overrides: dict[str, InstalledVoice] | None = None) -> None:
        self.default_engine = default_engine
        self._overrides = dict(overrides or {})

    @classmethod
    def from_settings(cls, settings: Settings, default_engine: Engine) -> VoiceMap:
        return cls(default_engine, parse_voice_map(settings.voice_map))

    def has_voice(self, voice_id: str) -> bool:
        return voice_id in VOICE_IDS

    def resolve(self, voice_id: str) -> InstalledVoice | None:
        """The installed voice for ``voice_id``; ``None`` for an id outside the catalogue."""
        if voice_id not in VOICE_IDS:
            return None
        return self._overrides.get(voice_id) or default_voice(voice_id, self.default_engine)

    def installed_voices(self) -> set[InstalledVoice]:
        """Every installed voice some id maps onto (what a provider must load)."""
        return {voice for voice_id in VOICE_IDS if (voice := self.resolve(voice_id)) is not None}

    def as_dict(self) -> dict[str, str]:
        return {voice_id: str(self.resolve(voice_id)) for voice_id in VOICE_IDS}


def describe_voice(installed: InstalledVoice) -> str:
    """What a listener hears, for people choosing a voice: ``Piper joe, female variant (~200 Hz)``."""
    if installed.engine == "espeak":
        return f"espeak-ng {installed.name} (formant synthesis)"
    model = installed.model
    name = (
        "Piper joe"
        if model == PACKAGED_PIPER_VOICE
        else f"Piper {model.rsplit('/', 1)[-1].removesuffix('.onnx')}"
    )
    variant = installed.variant
    if variant is None:
        return name
    change = VARIANTS[variant]
    gender = "female" if change.female else "male"
    return f"{name}, {gender} variant {variant} (~{change.new_pitch_median:.0f} Hz)"
