"""Streaming splitter from LLM text deltas to speakable chunks for TTS.

Speaking can start before the LLM finishes, so chunks are released as early as is safe:

- the **first** chunk may be a clause: it ends at ``,`` ``;`` ``:`` or a spaced dash once it holds at least
  ``min_clause_words`` words (starting speech on a clause, not a whole sentence, is the biggest
  single latency win);
- when the first sentence has no early clause, the first chunk may be a **phrase**: it ends before a word
  that opens a new phrase (``for``, ``with``, ``because``, …) once it holds at least
  ``first_phrase_words`` words ("You can book a table | for two at seven tonight."). The LLM writes about
  25 tokens a second on two cores and Piper renders a chunk whole, so a shorter first chunk starts the
  voice several hundred milliseconds earlier; :func:`synthesis_text` gives such a chunk a trailing comma
  for the TTS, so it is spoken as a phrase that goes on, not as a finished sentence;
- later chunks end at sentence ends (``.`` ``!`` ``?`` ``…``, a newline), or at a clause boundary once a
  sentence has run past ``max_sentence_words`` words;
- a boundary is only declared once the character after it has arrived, so ``3.5``, ``e.g. this``,
  ``Mr. Smith``, ``Wait...what`` and ``?!`` are not split in the wrong place.
"""

from __future__ import annotations

import re

from voxgate.speech.speech_normaliser import spoken_text

TITLES = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "sr.", "jr.", "mt.", "rev.", "gen.", "capt."}
)
"""Abbreviations that are always followed by a name: never a sentence end."""

ABBREVIATIONS = frozenset(
    {
        "e.g.", "i.e.", "etc.", "vs.", "approx.", "no.", "nos.", "inc.", "ltd.", "co.", "corp.", "dept.",
        "est.", "fig.", "min.", "max.", "avg.", "a.m.", "p.m.", "jan.", "feb.", "mar.", "apr.", "jun.",
        "jul.", "aug.", "sep.", "sept.", "oct.", "nov.", "dec.", "mon.", "tue.", "wed.", "thu.", "fri.",
        "sat.", "sun.", "ave.", "blvd.", "rd.", "apt.", "tel.", "ext.", "ft.", "oz.", "lb.", "lbs.",
    }
)  # fmt: skip
"""Abbreviations that may end a sentence: a boundary only when the next word starts with a capital."""

_CLOSERS = "\"'”’)]»"
_CLOSER_CLASS = "[" + re.escape(_CLOSERS) + "]"
_SENTENCE_END = re.compile(rf"(?:[.!?]+|…+)[.!?…]*{_CLOSER_CLASS}*(?=\s)")
_CLAUSE_END = re.compile(rf"(?:[,;:]{_CLOSER_CLASS}*|\s[—–]|\s--?)(?=\s)")
PHRASE_OPENERS = frozenset(
    {
        "for", "with", "at", "in", "on", "from", "by", "about", "during", "until", "after", "before",
        "because", "since", "and", "but", "or", "so", "if", "when", "while", "where", "which", "who",
        "whose", "unless", "although", "though", "per", "via", "through", "without", "within",
    }
)  # fmt: skip
"""Words that open a phrase: the first chunk may end before one of them (never after them)."""

_PHRASE_ENDERS_TO_AVOID = frozenset(
    {
        "a", "an", "the", "to", "of", "my", "your", "our", "their", "his", "her", "its", "is", "are",
        "was", "were", "be", "and", "or", "but", "not", "no", "this", "that", "these", "those", "very",
        "more", "most", "some", "any", "i", "you", "we", "they", "it", "he", "she", "can", "will",
        "would", "could", "should", "may", "might", "must", "do", "does", "did", "have", "has", "had",
    }
)  # fmt: skip
"""A phrase cut never leaves the chunk hanging on one of these ("I will | for" is not a phrase)."""

_SPOKEN_END = re.compile(rf"[.!?…,;:—–-]{_CLOSER_CLASS}*$")
_WORD = re.compile(r"\S+")
_ALNUM = re.compile(r"\w")
_SINGLE_INITIAL = re.compile(r"^[a-z]\.$", re.IGNORECASE)  # "J." in "J. R. Tolkien": never an end
_ACRONYM = re.compile(r"^(?:[a-z]\.){2,}$", re.IGNORECASE)  # "U.S.": an end only before a capital


def _word_count(text: str) -> int:
    return sum(1 for word in text.split() if _ALNUM.search(word))


def _next_visible(text: str, start: int) -> str | None:
    """The first non-space character at or after ``start``; ``None`` if it has not arrived yet."""
    for char in text[start:]:
        if not char.isspace():
            return char
    return None


class SentenceSplitter:
    """Feed LLM text deltas with :meth:`feed`; speak each returned chunk; call :meth:`flush` at the end."""

    def __init__(
        self,
        *,
        min_clause_words: int = 4,
        max_sentence_words: int = 24,
        first_phrase_words: int | None = None,
    ) -> None:
        self.min_clause_words = min_clause_words
        self.max_sentence_words = max_sentence_words
        self.first_phrase_words = first_phrase_words
        """``None``: the first chunk is a clause or a sentence, never a phrase."""
        self._buffer = ""
        self._chunks_emitted = 0

    @property
    def pending(self) -> str:
        """Text received and not yet returned."""
        return self._buffer

    def reset(self) -> None:
        self._buffer = ""
        self._chunks_emitted = 0

    def feed(self, text: str) -> list[str]:
        """Add a delta; return the chunks (stripped, non-empty) that are now complete."""
        self._buffer += text
        chunks: list[str] = []
        while (end := self._boundary()) is not None:
            chunk, self._buffer = self._buffer[:end].strip(), self._buffer[end:]
            if _ALNUM.search(chunk):  # a chunk of bare punctuation ("...", "—") is not spoken
                chunks.append(chunk)
                self._chunks_emitted += 1
        return chunks

    def flush(self) -> str:
        """The remainder at the end of the reply ("" when nothing speakable is left)."""
        rest, self._buffer = self._buffer.strip(), ""
        if not _ALNUM.search(rest):
            return ""
        self._chunks_emitted += 1
        return rest

    # --- boundary search ----------------------------------------------------------------------
    def _boundary(self) -> int | None:
        """End index of the first complete chunk in the buffer, or ``None`` if none is complete yet."""
        buffer = self._buffer
        sentence_end = self._sentence_end(buffer)
        newline = buffer.find("\n", len(buffer) - len(buffer.lstrip()))
        candidates = [
            index for index in (sentence_end, newline if newline > 0 else None) if index is not None
        ]
        clause_end = self._clause_end(buffer, limit=min(candidates) if candidates else len(buffer))
        if clause_end is not None:
            candidates.append(clause_end)
        if not candidates and self._chunks_emitted == 0 and self.first_phrase_words is not None:
            return self._phrase_end(buffer, self.first_phrase_words)
        return min(candidates) if candidates else None

    def _sentence_end(self, buffer: str) -> int | None:
        for match in _SENTENCE_END.finditer(buffer):
            punctuation = match.group().rstrip(_CLOSERS)
            if punctuation == ".":
                word = buffer[: match.start() + 1].split()[-1].lower().lstrip(_CLOSERS + "(")
                if word in TITLES or (_SINGLE_INITIAL.match(word) and word != "i."):
                    continue
                if word in ABBREVIATIONS or _ACRONYM.match(word) or word[:-1].isdigit():
                    following = _next_visible(buffer, match.end())
                    if following is None:
                        return None  # wait for the next word to decide
                    if not following.isupper():
                        continue
            elif punctuation.startswith(("..", "…")) and not punctuation.endswith(("!", "?")):
                following = _next_visible(buffer, match.end())
                if following is None:
                    return None
                if not following.isupper():
                    continue  # "Well... maybe": a pause inside the sentence
            return match.end()
        return None

    @staticmethod
    def _phrase_end(buffer: str, needed: int) -> int | None:
        """End of the first phrase of at least ``needed`` words: the space before a complete word of
        :data:`PHRASE_OPENERS` (complete: the character after it has arrived)."""
        words = list(_WORD.finditer(buffer))
        complete = len(words) if buffer[-1:].isspace() else len(words) - 1  # the last may still grow
        for index in range(needed, complete):
            word = words[index].group().lower()
            previous = words[index - 1].group()
            if (
                word in PHRASE_OPENERS
                and not _SPOKEN_END.search(previous)
                and previous.lower() not in _PHRASE_ENDERS_TO_AVOID
                and _word_count(buffer[: words[index].start()]) >= needed
            ):
                return words[index - 1].end()
        return None

    def _clause_end(self, buffer: str, *, limit: int) -> int | None:
        needed = self.min_clause_words if self._chunks_emitted == 0 else self.max_sentence_words
        for match in _CLAUSE_END.finditer(buffer):
            if match.end() > limit:
                break
            if _word_count(buffer[: match.start()]) >= needed:
                return match.end()
        return None


def synthesis_text(chunk: str, *, last: bool) -> str:
    """The text to give the TTS for ``chunk``: its spoken form (``speech_normaliser.spoken_text``: no
    markup, numbers, prices, times and ids said the way a person would); a chunk that stops mid-sentence
    without punctuation (a phrase cut) gets a comma, so it is spoken with the rise of a sentence that
    goes on and a short pause, not the fall of a finished one. The transcript keeps the written text
    (``speech_normaliser.displayed_text``). ``""``: nothing in ``chunk`` is to be spoken."""
    spoken = spoken_text(chunk)
    if not spoken or last or _SPOKEN_END.search(spoken):
        return spoken
    return spoken + ","
