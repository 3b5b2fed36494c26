"""Whether min_silence/max_silence were set survives every dump (session.update merges, checkpoints,
stored agents): set, they are promises; unset, the adaptive default applies and they are not reported."""

from __future__ import annotations

import pytest

from voxgate.protocol.config import InputConfig, SessionConfig, TurnDetection


@pytest.mark.parametrize(
    ("given", "explicit"),
    [
        ({}, set()),
        ({"min_silence": 2500}, {"min_silence"}),
        ({"max_silence": 5000}, {"max_silence"}),
        ({"min_silence": 1000, "max_silence": 3000}, {"min_silence", "max_silence"}),
    ],
)
def test_explicit_silences_survive_dumps(given: dict[str, int], explicit: set[str]) -> None:
    config = SessionConfig(input=InputConfig(turn_detection=TurnDetection(**given)))
    for dumped in (config.model_dump(), config.model_dump(mode="json")):
        restored = SessionConfig.model_validate(dumped)
        assert restored.input.turn_detection.explicit_silences == explicit
        assert set(dumped["input"]["turn_detection"]) & {"min_silence", "max_silence"} == explicit
    td = config.input.turn_detection
    assert (td.min_silence, td.max_silence) == (
        given.get("min_silence", 1000),
        given.get("max_silence", 3000),
    )


def test_the_documented_schema_still_lists_the_silences() -> None:
    properties = TurnDetection.model_json_schema(mode="serialization")["properties"]
    assert properties["min_silence"]["default"] == 1000 and properties["max_silence"]["default"] == 3000
