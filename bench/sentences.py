"""The fixed sentence set for speech benchmarks: things a caller says to a voice agent.

Changing a sentence changes every WER figure; append instead, and say so in the report.
"""

from __future__ import annotations

AGENT_SENTENCES: tuple[str, ...] = (
    "What's the weather in London tomorrow?",
    "My order number is A B one two three four five.",
    "Can you call me back at five five five, two three four, five six seven eight?",
    "Please transfer me to a human agent.",
    "I'd like to book a table for two at seven thirty tonight.",
    "Is the pharmacy on Main Street open on Sunday?",
    "I want to cancel my subscription.",
    "How much does the premium plan cost per month?",
    "Yes, that's correct.",
    "No, I said Tuesday, not Thursday.",
    "Can you repeat that more slowly, please?",
    "My email address is john dot smith at example dot com.",
    "I've been waiting on hold for twenty minutes.",
    "What time does the last train to Manchester leave?",
    "The package arrived damaged and I need a refund.",
    "Could you check if my payment went through?",
    "I need to change the delivery address for my order.",
    "Do you have any vegetarian options on the menu?",
    "Set a reminder for my dentist appointment on Friday morning.",
    "I'm calling about the invoice I received last week.",
    "Hi, are you open tonight?",
    "Thanks, that's all I needed. Goodbye.",
)

KEYTERM_SENTENCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("I'd like to speak to Siobhan about my Voxgate account.", ("Siobhan", "Voxgate")),
    ("Is Dr. Nguyen available on Thursday?", ("Nguyen",)),
    ("Please book me into the Quenby suite.", ("Quenby",)),
    ("My loyalty card says Zephyrine Gold.", ("Zephyrine",)),
    ("Send the parts to Aoife at Kestrelcomm.", ("Aoife", "Kestrelcomm")),
)
"""Sentences containing rare names, with the key terms a client would configure for them."""
