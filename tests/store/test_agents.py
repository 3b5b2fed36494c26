from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from tests.store.conftest import Backend
from voxgate.protocol.agents import AgentCreate, AgentUpdate
from voxgate.store import AgentDocumentError, Store
from voxgate.store.paging import PageRequest
from voxgate.store.secret_box import SecretBox, SecretDecryptionError
from voxgate.store.tables import AgentRow

SECRET = "sk-live-abcdef-123456"


def _create(**overrides: Any) -> AgentCreate:
    data: dict[str, Any] = {
        "name": "Support",
        "system_prompt": "You help.",
        "voice": {"voice_id": "ivy"},
        "tools": [
            {
                "name": "lookup_order",
                "http": {
                    "url": "https://api.example.com/orders",
                    "http_method": "GET",
                    "headers": [{"name": "X-Api-Key", "value": SECRET}, {"name": "X-Other", "value": "o1"}],
                },
            },
            {"name": "client_side"},
        ],
        "llm": [{"base_url": "https://llm.example.com/v1", "model": "m1", "api_key": "llm-key-1"}],
    }
    data.update(overrides)
    return AgentCreate.model_validate(data)


def _update(data: dict[str, Any]) -> AgentUpdate:
    return AgentUpdate.model_validate(data)


async def _project(store: Store, name: str = "p1") -> str:
    return await store.keys.ensure_project(name)


async def test_create_returns_a_record_without_secrets_and_stores_them_encrypted(store: Store) -> None:
    project = await _project(store)
    record = await store.agents.create(project, _create())
    assert record["id"].startswith("agent_") and len(record["id"]) == len("agent_") + 32
    assert record["created_at"] == record["updated_at"] and record["created_at"].endswith("Z")
    headers = record["tools"][0]["http"]["headers"]
    assert [set(h) for h in headers] == [{"name", "last_set_at"}] * 2  # never a value, not even "***"
    assert all(h["last_set_at"] for h in headers)
    assert "http" not in record["tools"][1]
    assert record["llm"] == [{"base_url": "https://llm.example.com/v1", "model": "m1"}]
    assert SECRET not in json.dumps(record) and "llm-key-1" not in json.dumps(record)
    async with store.engine.connect() as connection:
        document = (await connection.execute(select(AgentRow.document))).scalar_one()
    assert SECRET not in json.dumps(document) and "llm-key-1" not in json.dumps(document)


async def test_output_voice_mirrors_voice_id(store: Store) -> None:
    project = await _project(store)
    record = await store.agents.create(project, _create(voice="james", output={"voice": "ivy", "volume": 40}))
    assert record["voice"] == {"voice_id": "james"}
    assert record["output"]["voice"] == "james" and record["output"]["volume"] == 40
    updated = await store.agents.update(project, record["id"], _update({"voice": {"voice_id": "bella"}}))
    assert updated is not None and updated["output"]["voice"] == "bella"
    assert updated["output"]["volume"] == 40


async def test_load_for_session_decrypts_secrets(store: Store) -> None:
    project = await _project(store)
    record = await store.agents.create(project, _create(greeting="Hello!"))
    config = await store.agents.load_for_session(project, record["id"])
    assert config is not None
    assert config.agent_id == record["id"] and config.greeting == "Hello!"
    assert config.system_prompt == "You help."
    http = config.tools[0].http
    assert http is not None and http.http_method == "GET"
    assert {h.name: h.value for h in http.headers} == {"X-Api-Key": SECRET, "X-Other": "o1"}
    assert config.llm[0].api_key == "llm-key-1"
    assert config.output.voice == "ivy"


async def test_list_is_newest_first_and_scoped_to_the_project(store: Store) -> None:
    mine, theirs = await _project(store, "mine"), await _project(store, "theirs")
    first = await store.agents.create(mine, _create(name="first"))
    second = await store.agents.create(mine, _create(name="second"))
    await store.agents.create(theirs, _create(name="other"))
    listed = await store.agents.list(mine, PageRequest())
    assert [item["id"] for item in listed.rows] == [second["id"], first["id"]]
    assert listed.rows[0] == second and listed.next_cursor == "" and not listed.has_more


async def test_other_projects_cannot_see_change_or_delete(store: Store) -> None:
    mine, theirs = await _project(store, "mine"), await _project(store, "theirs")
    record = await store.agents.create(mine, _create())
    assert await store.agents.get(theirs, record["id"]) is None
    assert await store.agents.update(theirs, record["id"], _update({"name": "x"})) is None
    assert await store.agents.delete(theirs, record["id"]) is False
    assert await store.agents.load_for_session(theirs, record["id"]) is None
    assert await store.agents.get(mine, record["id"]) == record


async def test_partial_update_keeps_omitted_fields(store: Store) -> None:
    project = await _project(store)
    record = await store.agents.create(project, _create(greeting="Hi"))
    updated = await store.agents.update(project, record["id"], _update({"system_prompt": "New."}))
    assert updated is not None
    assert updated["system_prompt"] == "New."
    for field in ("name", "voice", "greeting", "input", "output", "tools", "llm", "created_at"):
        assert updated[field] == record[field], field
    assert updated["updated_at"] > record["updated_at"]
    cleared = await store.agents.update(project, record["id"], _update({"greeting": None}))
    assert cleared is not None and cleared["greeting"] is None


async def test_required_fields_cannot_be_nulled(store: Store) -> None:
    project = await _project(store)
    record = await store.agents.create(project, _create())
    with pytest.raises(AgentDocumentError) as caught:
        await store.agents.update(project, record["id"], _update({"name": None}))
    assert caught.value.loc == ("name",)


async def test_header_secret_rotate_keep_and_remove(store: Store) -> None:
    project = await _project(store)
    record = await store.agents.create(project, _create())
    original_set_at = {h["name"]: h["last_set_at"] for h in record["tools"][0]["http"]["headers"]}
    tools = [
        {
            "name": "lookup_order",
            "http": {
                "url": "https://api.example.com/v2/orders",
                "headers": [
                    {"name": "x-api-key"},  # keep (header names match case-insensitively)
                    {"name": "X-Other", "remove": True},  # delete
                    {"name": "X-New", "value": "n1"},  # set
                ],
            },
        }
    ]
    updated = await store.agents.update(project, record["id"], _update({"tools": tools}))
    assert updated is not None
    headers = updated["tools"][0]["http"]["headers"]
    assert [h["name"] for h in headers] == ["x-api-key", "X-New"]
    assert headers[0]["last_set_at"] == original_set_at["X-Api-Key"]
    assert len(updated["tools"]) == 1  # tools replaces the whole list
    config = await store.agents.load_for_session(project, record["id"])
    assert config is not None and config.tools[0].http is not None
    assert {h.name: h.value for h in config.tools[0].http.headers} == {"x-api-key": SECRET, "X-New": "n1"}

    rotated = [{"name": "lookup_order", "http": {"url": "https://api.example.com/o", "headers": [
        {"name": "x-api-key", "value": "rotated"}, {"name": "X-New", "value": "***"}]}}]  # fmt: skip
    again = await store.agents.update(project, record["id"], _update({"tools": rotated}))
    assert again is not None
    config = await store.agents.load_for_session(project, record["id"])
    assert config is not None and config.tools[0].http is not None
    assert {h.name: h.value for h in config.tools[0].http.headers} == {"x-api-key": "rotated", "X-New": "n1"}


async def test_keeping_a_header_that_was_never_set_is_refused_and_nothing_changes(store: Store) -> None:
    project = await _project(store)
    record = await store.agents.create(project, _create())
    tools = [{"name": "renamed_tool", "http": {"url": "https://api.example.com/o", "headers": [
        {"name": "X-Api-Key"}]}}]  # fmt: skip
    with pytest.raises(AgentDocumentError) as caught:
        await store.agents.update(project, record["id"], _update({"name": "changed", "tools": tools}))
    assert caught.value.loc == ("tools", 0, "http", "headers", 0, "value")
    assert await store.agents.get(project, record["id"]) == record


async def test_create_without_a_header_value_is_refused(store: Store) -> None:
    project = await _project(store)
    tools = [{"name": "t", "http": {"url": "https://api.example.com/o", "headers": [{"name": "A"}]}}]
    with pytest.raises(AgentDocumentError):
        await store.agents.create(project, _create(tools=tools))
    duplicate = [{"name": "t", "http": {"url": "https://api.example.com/o", "headers": [
        {"name": "A", "value": "1"}, {"name": "a", "value": "2"}]}}]  # fmt: skip
    with pytest.raises(AgentDocumentError) as caught:
        await store.agents.create(project, _create(tools=duplicate))
    assert caught.value.loc == ("tools", 0, "http", "headers", 1, "name")
    assert (await store.agents.list(project, PageRequest())).rows == []


async def test_llm_rules(store: Store) -> None:
    project = await _project(store)
    record = await store.agents.create(project, _create())
    agent_id = record["id"]
    kept = await store.agents.update(project, agent_id, _update({"name": "n"}))
    assert kept is not None and kept["llm"] == record["llm"]
    same_url = {"llm": [{"base_url": "https://llm.example.com/v1", "model": "m2"}]}
    await store.agents.update(project, agent_id, _update(same_url))
    config = await store.agents.load_for_session(project, agent_id)
    assert config is not None and config.llm[0].model == "m2" and config.llm[0].api_key == "llm-key-1"
    new_url = {"llm": [{"base_url": "https://other.example.com/v1", "model": "m3"}]}
    await store.agents.update(project, agent_id, _update(new_url))
    config = await store.agents.load_for_session(project, agent_id)
    assert config is not None and config.llm[0].api_key is None  # a key never follows to a new host
    cleared = await store.agents.update(project, agent_id, _update({"llm": []}))
    assert cleared is not None and cleared["llm"] == []


async def test_delete(store: Store) -> None:
    project = await _project(store)
    record = await store.agents.create(project, _create())
    assert await store.agents.delete(project, record["id"]) is True
    assert await store.agents.get(project, record["id"]) is None
    assert await store.agents.delete(project, record["id"]) is False
    assert await store.agents.update(project, record["id"], _update({"name": "x"})) is None


async def test_agents_survive_reopening_the_database(store: Store, backend: Backend) -> None:
    project = await _project(store)
    record = await store.agents.create(project, _create())
    reopened = await backend.open()
    try:
        assert await reopened.agents.get(project, record["id"]) == record
        config = await reopened.agents.load_for_session(project, record["id"])
        assert config is not None and config.tools[0].http is not None
        assert config.tools[0].http.headers[0].value == SECRET
    finally:
        await reopened.close()


async def test_a_different_secret_key_cannot_decrypt(store: Store, backend: Backend) -> None:
    project = await _project(store)
    record = await store.agents.create(project, _create())
    wrong = Backend(backend.url, SecretBox(Fernet.generate_key()), backend.connect_args)
    other = await wrong.open()
    try:
        assert (await other.agents.get(project, record["id"])) == record  # masked reads still work
        with pytest.raises(SecretDecryptionError):
            await other.agents.load_for_session(project, record["id"])
    finally:
        await other.close()


async def test_a_session_gets_the_hosted_fields_but_no_unknown_ones(store: Store) -> None:
    project = await _project(store)
    tools = [
        {"name": "book", "response_instructions": {"success": "Confirm it."}, "priority": "high",
         "dtmf_collected_arguments": [{"parameter_name": "pin", "prompt": "PIN", "min_digits": 4,
                                       "max_digits": 4, "sensitive": True}]},
    ]  # fmt: skip
    pre_connect = [{"http": {"url": "https://crm.example.com/x", "headers": [{"name": "A", "value": "crm"}]},
                    "returns": [{"name": "who", "path": "$.name"}], "timeout_ms": 500,
                    "extra": 1}]  # fmt: skip
    record = await store.agents.create(
        project, _create(tools=tools, pre_connect_requests=pre_connect, input={"language_codes": ["en"]})
    )
    assert record["tools"][0]["priority"] == "high" and record["pre_connect_requests"][0]["extra"] == 1
    config = await store.agents.load_for_session(project, record["id"])
    assert config is not None
    tool = config.tools[0]
    assert tool.id == record["tools"][0]["id"] and tool.response_instructions is not None
    assert tool.response_instructions.success == "Confirm it." and tool.dtmf_collected_arguments[0].sensitive
    request = config.pre_connect_requests[0]
    assert request.timeout_ms == 500 and request.http.headers[0].value == "crm"
    for model in (tool, request, config.input):
        assert not model.model_extra  # unknown fields stay with the stored agent
