"""Back-channel detection: short acknowledgements a listener says while the agent talks.

"uh-huh", "okay", "yeah", "mm-hmm", "right", "sure" (and short combinations of them) are not an attempt
to take the turn, so they must not interrupt the agent (PROTOCOL.md §9).
"""

from __future__ import annotations

import re

BACKCHANNEL_WORDS = frozenset({
    "uh-huh", "uhhuh", "uh", "huh", "mm-hmm", "mmhmm", "mhm", "mm", "hmm", "hm", "mmm", "okay", "ok",
    "yeah", "yes", "yep", "yup", "right", "sure", "alright", "all-right", "got", "it", "i", "see",
    "ah", "oh", "aha", "cool", "nice", "great", "true", "exactly", "totally", "makes", "sense", "good",
})  # fmt: skip
MAX_BACKCHANNEL_WORDS = 3
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def is_backchannel(transcript: str) -> bool:
    """True when ``transcript`` is only acknowledgement words (at most three of them)."""
    words = _WORD.findall(transcript.lower())
    if not words or len(words) > MAX_BACKCHANNEL_WORDS:
        return False
    return all(word in BACKCHANNEL_WORDS for word in words)
