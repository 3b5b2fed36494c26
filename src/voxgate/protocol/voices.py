"""The voice catalogue (PROTOCOL.md §7.4, HOSTED.md §4). Which installed voice speaks each id is the TTS
provider's business (speech/); here we only know which ids clients may send.

``BASELINE_VOICES`` is the hosted catalogue of today: PROTOCOL.md's mid-2026 list plus ``claire`` and
``mia``, which the hosted clients send (HOSTED.md §4 wins over PROTOCOL.md's removal of ``mia``)."""

from __future__ import annotations

DEFAULT_VOICE = "ivy"

BASELINE_VOICES: tuple[str, ...] = (
    "ivy", "james", "tyler", "winter", "bella", "david", "kyle", "helen", "martha", "river", "emma",
    "victor", "eleanor", "claire", "mia", "arjun", "dmitri", "pierre", "giulia", "luca", "lucia", "mateo",
    "diego",
)  # fmt: skip
LATER_VOICES: tuple[str, ...] = (
    "alba", "eve", "george", "jane", "jean", "mary", "michael", "anna", "charles", "paul", "vera",
)  # fmt: skip
REMOVED_VOICES: frozenset[str] = frozenset(
    {"sam", "jack", "sophie", "oliver", "ethan", "mei", "lukas", "lena", "mina", "joon", "ren", "hana"}
)

VOICE_IDS: tuple[str, ...] = BASELINE_VOICES + LATER_VOICES
FEMALE_VOICES: frozenset[str] = frozenset(
    {"ivy", "winter", "bella", "helen", "martha", "river", "emma", "eleanor", "claire", "mia", "giulia",
     "lucia", "alba", "eve", "jane", "mary", "anna", "vera"}
)  # fmt: skip


def is_known_voice(voice_id: str) -> bool:
    return voice_id in VOICE_IDS
