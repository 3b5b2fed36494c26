"""From what the agent writes to what its voice says (the transcript keeps what was written).

- :func:`displayed_text` — the written text without markup that was never meant to be read (Markdown
  emphasis, headings, list bullets, code fences, tool-call tags, JSON objects, HTML tags); numbers, ids
  and prices stay as written ("Order AB12345 costs $12.50.").
- :func:`spoken_text` — what the TTS gets (``sentences.synthesis_text``): the displayed text with
  everything a voice would otherwise read character by character said the way a person would: URLs
  and e-mail addresses ("example dot com"), prices ("twelve dollars and fifty cents"), clock times
  ("seven thirty p m"), phone numbers and long digit runs digit by digit in groups, order ids letter
  by letter, symbols as words.

Both are pure functions on one chunk (a clause or sentence of ``SentenceSplitter``); a construct cut
across two chunks degrades to having its symbols removed, never to being spelt out.
"""

from __future__ import annotations

import re

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((1_000_000_000, "billion"), (1_000_000, "million"), (1_000, "thousand"))
_DIGITS = dict(zip("0123456789", _ONES[:10], strict=True))

# --- markup (both forms) -------------------------------------------------------------------------
_TOOL_CALL_BLOCK = re.compile(r"<tool_call>.*?(?:</tool_call>|$)", re.DOTALL)
_CODE_FENCE_BLOCK = re.compile(r"```[^\n]*\n.*?(?:```|$)", re.DOTALL)
_FENCE = re.compile(r"```\w*")
_INLINE_CODE = re.compile(r"`([^`]*)`")
_HTML_TAG = re.compile(r"</?[A-Za-z_][\w:-]*(?:\s[^<>]*)?/?>")
_MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)\)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1")
_JSON_OBJECT = re.compile(r"\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")
_STRAY_MARKUP = re.compile(r"[`*#~^|{}\[\]<>\\]|(?<!\w)_+|_+(?!\w)")
_SPACES = re.compile(r"[ \t]+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([,.;:!?])")

# --- spoken forms ----------------------------------------------------------------------------------
_URL = re.compile(r"\b(?:https?://|www\.)[^\s,;]*[^\s,;.!?)]", re.IGNORECASE)
_EMAIL = re.compile(r"\b([\w.+-]+)@([\w-]+(?:\.[\w-]+)+)\b")
_CURRENCIES = {"$": ("dollar", "cent"), "£": ("pound", "penny"), "€": ("euro", "cent")}
_MONEY = re.compile(r"([$£€])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(?!\d)")
_TIME = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)(?:\s?([AaPp])\.?\s?[Mm](?![A-Za-z]))?")
_BARE_MERIDIEM = re.compile(r"\b(1[0-2]|[1-9])\s?([AaPp])\.?[Mm]\b")
_PHONE = re.compile(
    r"(?<![\w-])(?:\+?\d{1,3}[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}(?![\w-])|(?<![\w-])\d{3}-\d{4}(?![\w-])"
)
_ID = re.compile(r"\b(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\b")
_LONG_DIGITS = re.compile(r"(?<![\d.,])\d{5,}(?![\d.,]\d)")
_GROUPED_NUMBER = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,])")
_PERCENT = re.compile(r"(\d)\s?%")
_SYMBOLS = {"&": " and ", "@": " at ", "=": " equals ", "+": " plus ", "/": " slash "}
_ORDINAL_OR_UNIT = re.compile(r"^\d+(?:st|nd|rd|th|s|k|m|km|kg|g|h|am|pm)$", re.IGNORECASE)


def displayed_text(text: str) -> str:
    """``text`` without markup that is never meant to be read (see the module docstring)."""
    text = _TOOL_CALL_BLOCK.sub(" ", text)
    text = _CODE_FENCE_BLOCK.sub(" ", text)
    text = _FENCE.sub(" ", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _HTML_TAG.sub(" ", text)
    previous = None
    while previous != text:
        previous, text = text, _JSON_OBJECT.sub(" ", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _STRAY_MARKUP.sub(" ", text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def spoken_text(text: str) -> str:
    """What a person would say for ``text`` (see the module docstring)."""
    text = displayed_text(text)
    text = _URL.sub(lambda m: _spoken_url(m.group()), text)
    text = _EMAIL.sub(lambda m: f"{_spoken_dotted(m.group(1))} at {_spoken_dotted(m.group(2))}", text)
    text = _MONEY.sub(_spoken_money, text)
    text = _TIME.sub(_spoken_time, text)
    text = _BARE_MERIDIEM.sub(lambda m: f"{number_words(int(m.group(1)))} {m.group(2).lower()} m", text)
    text = _PHONE.sub(lambda m: _digit_groups(m.group()), text)
    text = _ID.sub(_spoken_id, text)
    text = _LONG_DIGITS.sub(lambda m: _digits(m.group()), text)
    text = _GROUPED_NUMBER.sub(lambda m: number_words(int(m.group().replace(",", ""))), text)
    text = _PERCENT.sub(r"\1 percent", text)
    for symbol, word in _SYMBOLS.items():
        text = text.replace(f" {symbol} ", word)
    text = _SPACES.sub(" ", text)
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text).strip()


def number_words(value: int) -> str:
    """``1234`` -> ``one thousand two hundred thirty-four`` (below a trillion; larger: digit by digit)."""
    if value < 0:
        return f"minus {number_words(-value)}"
    if value >= 1_000_000_000_000:
        return _digits(str(value))
    if value < 20:
        return _ONES[value]
    if value < 100:
        tens, ones = divmod(value, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if value < 1000:
        hundreds, rest = divmod(value, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")
    for scale, name in _SCALES:
        if value >= scale:
            high, rest = divmod(value, scale)
            return f"{number_words(high)} {name}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def _digits(run: str) -> str:
    return " ".join(_DIGITS[char] for char in run if char in _DIGITS)


def _digit_groups(number: str) -> str:
    """``555-234-5678`` -> ``five five five, two three four, five six seven eight``."""
    groups = [group for group in re.split(r"[^\d+]+", number) if group.strip("+")]
    spoken = [("plus " if group.startswith("+") else "") + _digits(group) for group in groups]
    return ", ".join(spoken)


def _spoken_id(match: re.Match[str]) -> str:
    """An id of letters and digits (``AB12345``, ``A-42``) letter by letter, digit by digit; a number
    with an ordinal or unit suffix (``21st``, ``5km``) is left to the voice."""
    token = match.group()
    if _ORDINAL_OR_UNIT.match(token):
        return token
    parts = []
    for chunk in re.findall(r"[A-Za-z]+|\d+", token):
        if chunk.isdigit():
            parts.append(_digits(chunk))
        else:
            parts.append(" ".join(chunk.upper()))
    return " ".join(parts)


def _spoken_money(match: re.Match[str]) -> str:
    unit, subunit = _CURRENCIES[match.group(1)]
    whole = int(match.group(2).replace(",", ""))
    cents = int((match.group(3) or "0").ljust(2, "0"))
    subunits = "pence" if subunit == "penny" else f"{subunit}s"
    whole_words = f"{number_words(whole)} {unit}{'' if whole == 1 else 's'}"
    if not cents:
        return whole_words
    cent_words = f"{number_words(cents)} {subunit if cents == 1 else subunits}"
    return cent_words if whole == 0 else f"{whole_words} and {cent_words}"


def _spoken_time(match: re.Match[str]) -> str:
    hour, minute, meridiem = int(match.group(1)), int(match.group(2)), match.group(3)
    if meridiem is None and (hour >= 13 or hour == 0):  # a 24-hour time: say it the 12-hour way
        meridiem = "a" if hour == 0 else "p"
    hour12 = hour % 12 or 12
    if minute == 0:
        minutes = ""
    elif minute < 10:
        minutes = f" oh {_ONES[minute]}"
    else:
        minutes = f" {number_words(minute)}"
    if meridiem is None:
        return f"{number_words(hour12)}{minutes or ' o clock'}"
    return f"{number_words(hour12)}{minutes} {meridiem.lower()} m"


def _spoken_dotted(text: str) -> str:
    return " dot ".join(part for part in re.split(r"\.", text) if part)


def _spoken_url(url: str) -> str:
    """A URL as its host, the way people say it: ``https://www.example.com/x`` -> ``example dot com``."""
    host = re.sub(r"^(?:https?://)?(?:www\.)?", "", url, flags=re.IGNORECASE).split("/", 1)[0]
    return _spoken_dotted(host.split(":", 1)[0].lower())
