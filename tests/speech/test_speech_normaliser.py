"""What the agent writes -> what the transcript shows and what the voice says."""

from __future__ import annotations

import pytest

from voxgate.speech.sentences import synthesis_text
from voxgate.speech.speech_normaliser import displayed_text, number_words, spoken_text


@pytest.mark.parametrize(
    ("written", "displayed"),
    [
        (
            'Sure! You can call the `lookup_order` function with the arguments {"order_id": "B12345"}.',
            "Sure! You can call the lookup_order function with the arguments.",
        ),
        ("Your order **AB12345** is _on its way_.", "Your order AB12345 is on its way."),
        ("# Menu\n- Margherita: £8\n* Pepperoni: £9.50", "Menu\nMargherita: £8\nPepperoni: £9.50"),
        ("1. Call us\n2) Or write", "Call us\nOr write"),
        ('<tool_call>\n{"name": "lookup_order", "arguments": {"order_id": "AB1"}}\n</tool_call>', ""),
        ("Here:\n```python\nprint('hi')\n```\nDone.", "Here:\nDone."),
        ("See [our menu](https://example.com/menu) <b>now</b>.", "See our menu now."),
        ('Nested {"a": {"b": 1}} gone', "Nested gone"),
        ("snake_case and it's 3.5 stay", "snake_case and it's 3.5 stay"),
        ('He said "stop." — fine', 'He said "stop." — fine'),
    ],
)
def test_displayed_text_drops_markup_but_keeps_what_was_written(written: str, displayed: str) -> None:
    assert displayed_text(written) == displayed


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Order AB12345 is ready.", "Order A B one two three four five is ready."),
        ("Order 98765 shipped.", "Order nine eight seven six five shipped."),
        ("It costs $12.50 today.", "It costs twelve dollars and fifty cents today."),
        (
            "Only $1 or €0.99 or £2,500.",
            "Only one dollar or ninety-nine cents or two thousand five hundred pounds.",
        ),
        ("Pick up at 7:30 pm.", "Pick up at seven thirty p m."),
        ("We open at 19:00 and 07:05.", "We open at seven p m and seven oh five."),
        ("Come at 9am or 10 P.M.", "Come at nine a m or ten p m."),
        ("Call 555-234-5678 now.", "Call five five five, two three four, five six seven eight now."),
        ("Or +1 (555) 234-5678.", "Or plus one, five five five, two three four, five six seven eight."),
        ("Visit https://www.example.com/orders/1.", "Visit example dot com."),
        ("Write to help@example.co.uk please.", "Write to help at example dot co dot uk please."),
        (
            "That is 100% sure, 1,250 points.",
            "That is 100 percent sure, one thousand two hundred fifty points.",
        ),
        ("The 21st, 5km away, 3 cats.", "The 21st, 5km away, 3 cats."),
        ("Fish & chips", "Fish and chips"),
        ('{"order_id": "AB12345"}', ""),
    ],
)
def test_spoken_text_says_numbers_ids_and_addresses_the_way_people_do(written: str, spoken: str) -> None:
    assert spoken_text(written) == spoken


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (42, "forty-two"),
        (100, "one hundred"),
        (705, "seven hundred five"),
        (1_000, "one thousand"),
        (2_024, "two thousand twenty-four"),
        (3_000_017, "three million seventeen"),
        (-5, "minus five"),
    ],
)
def test_number_words(value: int, words: str) -> None:
    assert number_words(value) == words


def test_the_tts_gets_the_spoken_form_of_each_chunk() -> None:
    assert (
        synthesis_text("Your order AB12 costs $5", last=False) == "Your order A B one two costs five dollars,"
    )
    assert synthesis_text("`{}`", last=True) == ""
