"""Speak or call, decided on the model's logits; arguments checked against the tool's schema."""

from __future__ import annotations

import json

import pytest

from voxgate.speech.base import ChatMessage, ToolCallRequest, ToolSchema
from voxgate.speech.instruction_directives import dictated_text, instructed_tool, verbatim_reply
from voxgate.speech.reply_grammar import (
    GENERIC_OBJECT_GBNF,
    REPLY_FORMAT,
    action_options,
    arguments_gbnf,
    choose_action,
    tool_call_text,
    with_reply_format,
)
from voxgate.speech.tool_arguments import argument_errors
from voxgate.speech.tool_call_parsing import caller_context, is_grounded, parse_tool_calls

ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "people": {"type": "integer"}},
    "required": ["order_id"],
}


class FakeModel:
    """Next-token logits from a table: the last context token -> {token: logit}; records each evaluation."""

    def __init__(self, table: dict[int, dict[int, float]]) -> None:
        self.table = table
        self.evaluated: list[list[int]] = []

    def logits_after(self, context: list[int]) -> list[float]:
        self.evaluated.append(list(context))
        logits = [0.0] * 100
        for token, logit in self.table.get(context[-1], {}).items():
            logits[token] = logit
        return logits


@pytest.mark.parametrize(
    ("table", "expected", "evaluations"),
    [
        ({5: {10: 2.0, 20: 1.0, 30: 0.5}}, "speak", 1),
        ({5: {10: 0.1, 20: 3.0}, 20: {21: 0.2, 22: 0.9}}, "get_hours", 2),
        ({5: {10: 0.1, 20: 3.0}, 20: {21: 0.9, 22: 0.2}}, "get_weather", 2),
        ({5: {30: 9.0}}, "transfer", 1),
    ],
)
def test_the_action_is_the_options_path_with_the_highest_logits(
    table: dict[int, dict[int, float]], expected: str, evaluations: int
) -> None:
    # the prompt ends in 4 5; get_* share their first name token (20)
    options = {
        "speak": [1, 2, 10, 99],
        "get_weather": [1, 2, 20, 21, 99],
        "get_hours": [1, 2, 20, 22, 99],
        "transfer": [1, 2, 30, 99],
    }
    model = FakeModel(table)
    assert choose_action([4, 5], {k: v[2:] for k, v in options.items()}, model.logits_after) == expected
    assert len(model.evaluated) == evaluations
    assert model.evaluated[0] == [4, 5]


def test_shared_prefix_tokens_are_forced_before_the_first_decision() -> None:
    model = FakeModel({2: {10: 1.0, 20: 2.0}})
    options = {"speak": [1, 2, 10], "lookup": [1, 2, 20]}
    assert choose_action([7], options, model.logits_after) == "lookup"
    assert model.evaluated == [[7, 1, 2]]


def test_a_single_option_needs_no_model_call() -> None:
    model = FakeModel({})
    assert choose_action([7], {"speak": [1, 2]}, model.logits_after) == "speak"
    assert model.evaluated == []


def test_options_are_speak_then_each_tool() -> None:
    tools = [ToolSchema("lookup_order", "", ORDER_SCHEMA), ToolSchema("speak", "", {})]
    options = action_options(tools, lambda text: [ord(c) for c in text])
    assert list(options) == ["speak", "lookup_order"]
    assert "".join(map(chr, options["lookup_order"])) == '{"action": "lookup_order"'


def test_the_reply_format_goes_to_the_end_of_the_system_prompt() -> None:
    messages = [ChatMessage("system", "You are Ava."), ChatMessage("user", "Hi")]
    formatted = with_reply_format(messages)
    assert formatted[0].content == f"You are Ava.\n\n{REPLY_FORMAT}"
    assert formatted[1:] == messages[1:]
    assert messages[0].content == "You are Ava."  # not changed in place
    assert with_reply_format([ChatMessage("user", "Hi")])[0] == ChatMessage("system", REPLY_FORMAT)


def test_a_call_written_under_the_grammar_is_read_back_by_the_parser() -> None:
    text = tool_call_text("lookup_order", ' {"order_id": "AB12345"} ')
    calls = parse_tool_calls(text, ["lookup_order"])
    assert calls is not None and [(c.name, c.arguments) for c in calls] == [
        ("lookup_order", {"order_id": "AB12345"})
    ]


def test_argument_grammars_follow_the_schema_or_fall_back_to_any_object() -> None:
    grammar = arguments_gbnf(ORDER_SCHEMA)
    assert grammar.startswith('root ::= " "? tool-arguments\n') and grammar.count("root ::=") == 1
    assert "order_id" in grammar and "tool-arguments ::=" in grammar
    generic = arguments_gbnf({})
    assert generic == arguments_gbnf({"type": "object", "properties": {}})
    assert GENERIC_OBJECT_GBNF.strip().replace("root   ::=", "tool-arguments ::=", 1) in generic


@pytest.mark.parametrize(
    ("arguments", "schema", "problem"),
    [
        ({"order_id": "AB12345"}, ORDER_SCHEMA, None),
        ({"order_id": "AB12345", "extra": 1}, ORDER_SCHEMA, None),
        ({}, ORDER_SCHEMA, "required"),
        ({"order_id": "AB1", "people": "two"}, ORDER_SCHEMA, "integer"),
        ({"anything": 1}, {}, None),
        ({"anything": 1}, {"type": "nonsense"}, None),  # an unusable schema checks nothing
    ],
)
def test_arguments_are_checked_against_the_tools_json_schema(
    arguments: dict[str, object], schema: dict[str, object], problem: str | None
) -> None:
    errors = argument_errors(arguments, schema)
    if problem is None:
        assert errors == []
    else:
        assert errors and problem in errors[0]


def test_instructions_count_as_grounding_but_the_system_prompt_does_not() -> None:
    schema = ToolSchema("get_weather", "", {"properties": {"city": {"type": "string"}}, "required": ["city"]})
    call = ToolCallRequest("call_1", "get_weather", {"city": "Paris"})
    system = ChatMessage("system", "You know Paris well.")
    instruction = ChatMessage("system", "The user asked: what's the weather in Paris? Call the tool now.")
    assert not is_grounded(call, schema, caller_context([system, ChatMessage("user", "Hello")]))
    assert is_grounded(call, schema, caller_context([system, ChatMessage("user", "Hello"), instruction]))


@pytest.mark.parametrize(
    ("instruction", "dictated"),
    [
        ("Say exactly: banana.", "banana."),
        ('say exactly "Your table is booked."', "Your table is booked."),
        ("Repeat verbatim: “Hello there”", "Hello there"),
        ("Say exactly:", None),
        ("Say something nice.", None),
        ("Tell the caller exactly: it is 5 pm", "it is 5 pm"),
    ],
)
def test_dictated_text(instruction: str, dictated: str | None) -> None:
    assert dictated_text(instruction) == dictated


def test_only_a_trailing_instruction_dictates_the_reply() -> None:
    system = ChatMessage("system", "Say exactly: welcome.")
    assert verbatim_reply([system, ChatMessage("user", "Hi")]) is None
    assert verbatim_reply([ChatMessage("user", "Hi"), ChatMessage("system", "Say exactly: bye")]) == "bye"


def test_tool_call_text_is_valid_json_inside_the_tags() -> None:
    text = tool_call_text("x", '{"a": 1}')
    body = text.removeprefix("<tool_call>\n").removesuffix("\n</tool_call>")
    assert json.loads(body) == {"name": "x", "arguments": {"a": 1}}


@pytest.mark.parametrize(
    ("instruction", "tool"),
    [
        ("The user asked: what's the weather in Paris? Call the get_weather tool now.", "get_weather"),
        ("Use lookup_order for AB12345.", "lookup_order"),
        ("Do not call get_weather again.", None),
        ("Call get_weather or lookup_order.", None),  # two tools: the model decides
        ("Mention get_weather exists.", None),  # no verb telling it to call
        ("Call get_weather_v2 now.", None),  # another name
    ],
)
def test_an_instruction_naming_one_tool_to_call_makes_it_the_action(
    instruction: str, tool: str | None
) -> None:
    tools = [ToolSchema("get_weather", "", {}), ToolSchema("lookup_order", "", ORDER_SCHEMA)]
    messages = [ChatMessage("system", "You are Ava."), ChatMessage("system", instruction)]
    assert instructed_tool(messages, tools) == tool
    assert instructed_tool([*messages, ChatMessage("user", "hi")], tools) is None  # not the last message
