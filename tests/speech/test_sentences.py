"""SentenceSplitter: early first clause, sentence ends, and the places a naive splitter gets wrong."""

from __future__ import annotations

import pytest

from voxgate.speech.sentences import SentenceSplitter, synthesis_text


def split(text: str, *, step: int = 1, **options: int) -> list[str]:
    """Feed ``text`` in ``step``-character deltas (as an LLM would) and collect every chunk."""
    splitter = SentenceSplitter(**options)
    chunks: list[str] = []
    for start in range(0, len(text), step):
        chunks.extend(splitter.feed(text[start : start + step]))
    rest = splitter.flush()
    return [*chunks, rest] if rest else chunks


@pytest.mark.parametrize("step", [1, 3, 7, 1000])
def test_first_chunk_is_a_clause_then_whole_sentences(step: int) -> None:
    text = "Sure thing, I can book that table for you, no problem. It is for two people, right? Great."
    assert split(text, step=step) == [
        "Sure thing, I can book that table for you,",
        "no problem.",
        "It is for two people, right?",
        "Great.",
    ]


def test_short_opening_clause_is_not_split() -> None:
    assert split("Hi, how are you today? Good.") == ["Hi, how are you today?", "Good."]


def test_clause_release_happens_on_the_following_space() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Let me check the weather for you,") == []
    assert splitter.feed(" one") == ["Let me check the weather for you,"]


def test_sentence_end_waits_for_the_next_character() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("It costs 3.") == []
    assert splitter.feed("5 dollars. And") == ["It costs 3.5 dollars."]
    assert splitter.flush() == "And"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mr. Smith will see you. Bye.", ["Mr. Smith will see you.", "Bye."]),
        ("Dr. Jones and Mrs. Lee are in. Okay.", ["Dr. Jones and Mrs. Lee are in.", "Okay."]),
        ("Bring fruit, e.g. apples or pears. Thanks.", ["Bring fruit, e.g. apples or pears.", "Thanks."]),
        ("We open at 9 a.m. on weekdays. Bye.", ["We open at 9 a.m. on weekdays.", "Bye."]),
        ("Come at 7 p.m. See you then.", ["Come at 7 p.m.", "See you then."]),
        ("The total is 12.75 pounds. Okay?", ["The total is 12.75 pounds.", "Okay?"]),
        ("Well... maybe later. Sure.", ["Well... maybe later.", "Sure."]),
        ("I wonder... Yes, it works.", ["I wonder...", "Yes, it works."]),
        ("Really?! That is great.", ["Really?!", "That is great."]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("It was J. R. Tolkien. Right.", ["It was J. R. Tolkien.", "Right."]),
        ("So am I. Great news.", ["So am I.", "Great news."]),
        ("Pay 1,000 dollars now. Done.", ["Pay 1,000 dollars now.", "Done."]),
        ("Wait for it… Now go.", ["Wait for it…", "Now go."]),
    ],
)
def test_abbreviations_decimals_and_ellipses(text: str, expected: list[str]) -> None:
    assert split(text, min_clause_words=100) == expected
    assert split(text, step=4, min_clause_words=100) == expected


def test_later_sentences_are_not_split_at_commas() -> None:
    text = "First sentence here. Then a second one, with a comma, and more words. End."
    assert split(text, min_clause_words=1) == [
        "First sentence here.",
        "Then a second one, with a comma, and more words.",
        "End.",
    ]


def test_a_very_long_sentence_is_split_at_a_clause() -> None:
    long_clause = " ".join(["word"] * 30)
    chunks = split(f"Okay. {long_clause}, and then the rest of it.")
    assert chunks == ["Okay.", f"{long_clause},", "and then the rest of it."]


def test_newlines_end_chunks() -> None:
    assert split("Here are the options:\n1 pepperoni\n2 margherita") == [
        "Here are the options:",
        "1 pepperoni",
        "2 margherita",
    ]


def test_dash_is_a_clause_boundary_for_the_first_chunk() -> None:
    assert split("I checked the calendar for you — Tuesday works.") == [
        "I checked the calendar for you —",
        "Tuesday works.",
    ]


def test_punctuation_only_chunks_are_not_spoken() -> None:
    assert split("... Hello there.") == ["Hello there."]
    assert split("  ...  ") == []


def test_flush_returns_the_remainder_and_resets() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("No punctuation at the end") == []
    assert splitter.flush() == "No punctuation at the end"
    assert splitter.flush() == ""
    assert splitter.pending == ""


def test_reset_restores_the_early_clause_for_the_next_reply() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Hello. Then one two three four, five ") == ["Hello."]
    splitter.reset()
    assert splitter.feed("One two three four, five ") == ["One two three four,"]


@pytest.mark.parametrize("step", [1, 3, 7])
def test_first_sentence_without_a_clause_is_cut_before_a_phrase(step: int) -> None:
    text = "You can book a table for two at seven thirty tonight. It is on the terrace for you."
    assert split(text, step=step, min_clause_words=3, first_phrase_words=3) == [
        "You can book a table",
        "for two at seven thirty tonight.",
        "It is on the terrace for you.",
    ]


def test_no_phrase_cut_once_the_sentence_end_has_arrived() -> None:
    """The cut only saves waiting for the rest of the sentence: text that arrives whole is not cut."""
    text = "You can book a table for two at seven thirty tonight. Okay."
    assert split(text, step=1000, min_clause_words=3, first_phrase_words=3) == [
        "You can book a table for two at seven thirty tonight.",
        "Okay.",
    ]


def test_phrase_cut_waits_until_the_opening_word_is_complete() -> None:
    splitter = SentenceSplitter(first_phrase_words=3)
    assert splitter.feed("Set a reminder fo") == []
    assert splitter.feed("r") == []  # could still become "forty" or "format"
    assert splitter.feed(" your") == ["Set a reminder"]
    splitter = SentenceSplitter(first_phrase_words=3)
    assert splitter.feed("Set a reminder format ") == []  # not a phrase opener


@pytest.mark.parametrize(
    "text",
    [
        "I will for sure call you back.",  # "will" cannot end a phrase
        "You're waiting for twenty minutes.",  # too few words before "for"
        "Yes, I can confirm that my payment has been processed.",  # no phrase opener
    ],
)
def test_no_phrase_cut_where_it_would_break_a_phrase(text: str) -> None:
    assert split(text, min_clause_words=3, first_phrase_words=3) == [text]


def test_only_the_first_chunk_is_a_phrase_and_clauses_come_first() -> None:
    assert split("Okay, let me look at that now. It is ready for pickup at noon.", first_phrase_words=3) == [
        "Okay, let me look",
        "at that now.",
        "It is ready for pickup at noon.",
    ]
    assert split("Let me check that, for you.", min_clause_words=3, first_phrase_words=3) == [
        "Let me check that,",
        "for you.",
    ]
    assert split("You can book a table for two.") == ["You can book a table for two."]  # off by default


def test_synthesis_text_gives_a_phrase_cut_a_comma() -> None:
    assert synthesis_text("You can book a table", last=False) == "You can book a table,"
    assert synthesis_text("You can book a table", last=True) == "You can book a table"
    for chunk in ("Hello there.", "Let me check that,", "Really?!", 'He said "stop."', "Wait —"):
        assert synthesis_text(chunk, last=False) == chunk
