"""The agent's words as the listener hears them: ``transcript.agent.delta`` (HOSTED.md §4) and the
trimmed text of an interrupted reply, from one estimate so that the two always agree.

A reply's :class:`~voxgate.conversation.reply.Alignment` says which text each stretch of its audio carries
(one segment per TTS chunk). Within a segment the words are spread evenly over its audio: word ``k`` of
``n`` in a segment from ``start`` to ``end`` ms occupies ``start + k/n·d`` to ``start + (k+1)/n·d``
(``d = end - start``) and counts as heard once the playout clock has passed its end.

:class:`PlayedTranscript` hands out the words heard so far as deltas while the audio plays (only from
segments whose audio is complete, so a word's position never moves after it was sent), and fixes the
final text once: at the playhead when the reply is cut (never fewer words than were sent), or every word
when it completes. What was settled but not yet sent goes out as one last delta before
``transcript.agent``, so the deltas of a reply always concatenate to its final text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from voxgate.protocol.events import TranscriptAgentDelta

_WORDS = re.compile(r"\S+")


class Segment(Protocol):
    text: str
    start_ms: float
    end_ms: float
    complete: bool


@dataclass(frozen=True, slots=True)
class TimedWord:
    text: str
    start_ms: float
    end_ms: float


def _timed(segment: Segment, k: int, word: str, count: int) -> TimedWord:
    span = segment.end_ms - segment.start_ms
    return TimedWord(word, segment.start_ms + span * k / count, segment.start_ms + span * (k + 1) / count)


def segment_words(segment: Segment) -> list[TimedWord]:
    words = _WORDS.findall(segment.text)
    return [_timed(segment, k, word, len(words)) for k, word in enumerate(words)]


def all_words(segments: Sequence[Segment]) -> list[TimedWord]:
    return [word for segment in segments for word in segment_words(segment)]


def heard_words(segments: Sequence[Segment], heard_ms: float, *, complete_only: bool) -> Iterator[TimedWord]:
    """The words heard by ``heard_ms``, in order. ``complete_only``: stop at a segment whose audio is not
    all there yet (its word positions would still move); otherwise such a segment counts by the audio it
    has so far, and one with no audio yet is not heard."""
    for segment in segments:
        span = segment.end_ms - segment.start_ms
        if not segment.complete and (complete_only or span <= 0):
            return
        words = _WORDS.findall(segment.text)
        count = len(words)
        for k, word in enumerate(words):
            # word k ends at start + span·(k+1)/count; compared without dividing (no rounding at the edge)
            if (heard_ms - segment.start_ms) * count < span * (k + 1) or heard_ms < segment.start_ms:
                return
            yield _timed(segment, k, word, count)


class PlayedTranscript:
    """The deltas and final text of one reply (see the module docstring)."""

    def __init__(self, segments: Sequence[Segment], reply_id: str, item_id: str) -> None:
        self._segments = segments
        self._reply_id = reply_id
        self._item_id = item_id
        self._sent = 0
        """Words sent in deltas so far."""
        self._final: int | None = None
        """Words of the final text, once settled."""

    @property
    def settled(self) -> bool:
        return self._final is not None

    def advance(self, played_ms: float) -> TranscriptAgentDelta | None:
        """The delta of the words heard since the last one (None when there are none, or once settled).
        The words count as sent when this returns."""
        if self._final is not None:
            return None
        heard = sum(1 for _ in heard_words(self._segments, played_ms, complete_only=True))
        return self._delta_to(heard)

    def settle_heard(self, heard_ms: float) -> str:
        """The reply was cut with ``heard_ms`` heard: fix and return the final (trimmed) text."""
        if self._final is None:
            heard = sum(1 for _ in heard_words(self._segments, heard_ms, complete_only=False))
            self._final = max(self._sent, heard)
        return self.text

    def settle_all(self) -> str:
        """The reply completed: every word is in the final text, which is returned."""
        if self._final is None:
            self._final = len(all_words(self._segments))
        return self.text

    def rest(self) -> TranscriptAgentDelta | None:
        """The delta of the settled words not sent yet (None if there are none or nothing is settled)."""
        return None if self._final is None else self._delta_to(self._final)

    @property
    def text(self) -> str:
        """The final text once settled, else the words sent so far."""
        count = self._sent if self._final is None else self._final
        return " ".join(word.text for word in all_words(self._segments)[:count])

    def _delta_to(self, count: int) -> TranscriptAgentDelta | None:
        if count <= self._sent:
            return None
        words = all_words(self._segments)[self._sent : count]
        prefix = " " if self._sent else ""
        self._sent = count
        return TranscriptAgentDelta(
            item_id=self._item_id,
            reply_id=self._reply_id,
            delta=prefix + " ".join(word.text for word in words),
            start_ms=round(words[0].start_ms),
            end_ms=round(words[-1].end_ms),
        )
