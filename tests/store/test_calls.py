"""Call records on SQLite and PostgreSQL: linking placed calls to Twilio's CallSid and to their session,
status changes announced in the outbox, project isolation, paging with filters."""

from __future__ import annotations

import json

import pytest

from voxgate.store import Store
from voxgate.store.call_states import STREAM_ENDED
from voxgate.store.calls import AnsweredCall
from voxgate.store.paging import InvalidCursor, PageRequest
from voxgate.store.webhook_subscriptions import SubscriptionFields

SECRET = "c" * 40
CALL_EVENTS = ["call.connected", "call.ended", "call.failed"]


def _answer(project: str, sid: str, **overrides: object) -> AnsweredCall:
    fields: dict[str, object] = {
        "project_id": project,
        "agent_id": "agent_a",
        "call_sid": sid,
        "direction": "inbound",
        "from_number": "+14155550100",
        "to_number": "+14155550199",
    }
    fields.update(overrides)
    return AnsweredCall(**fields)  # type: ignore[arg-type]


async def _events(store: Store) -> list[tuple[str, dict[str, object]]]:
    claimed = await store.outbox.claim("test", limit=50, lease_seconds=30)
    bodies = [json.loads(delivery.body) for delivery in claimed]
    return [(body["type"], body["data"]) for body in bodies]


async def test_a_placed_call_is_linked_connected_and_ended(store: Store) -> None:
    project = await store.keys.ensure_project("calls")
    await store.webhooks.create(
        project,
        SubscriptionFields(url="https://hooks.example.com", events=CALL_EVENTS, secret=SECRET, agent_id=None),
    )
    placed = await store.calls.place(project, "agent_a", "+14155550100", "+14155550123")
    assert placed["status"] == "dialing" and placed["direction"] == "outbound"
    await store.calls.link_carrier(placed["id"], "CA1", "queued")
    # the webhook URL names the call: it is linked, not recorded again
    assert await store.calls.answered(_answer(project, "CA1", call_id=placed["id"])) == placed["id"]
    assert (await store.calls.advance(None, "CA1", "ringing", call_id=placed["id"]))["status"] == "dialing"
    connected = await store.calls.stream_connected(project, "CA1", "sess_1")
    assert connected is not None
    assert connected["status"] == "active" and connected["session_id"] == "sess_1"
    ended = await store.calls.advance(project, "CA1", STREAM_ENDED)
    assert ended is not None and ended["status"] == "ended"
    assert ended["duration_seconds"] is not None and ended["ended_at"] is not None
    # Twilio's completed callback after the stream's end changes nothing
    late = await store.calls.advance(None, "CA1", "completed", call_id=placed["id"])
    assert late == ended
    events = await _events(store)
    assert [kind for kind, _ in events] == ["call.connected", "call.ended"]
    assert events[1][1] == ended


async def test_a_call_not_taken_is_refused_and_announced_as_failed(store: Store) -> None:
    project = await store.keys.ensure_project("calls")
    await store.webhooks.create(
        project,
        SubscriptionFields(
            url="https://hooks.example.com", events=["call.failed"], secret=SECRET, agent_id=None
        ),
    )
    placed = await store.calls.place(project, "agent_a", "+14155550100", "+14155550123")
    refused = await store.calls.advance(None, "CA2", "no-answer", call_id=placed["id"])
    assert refused is not None
    assert refused["status"] == "refused" and refused["duration_seconds"] is None
    assert await store.calls.advance(None, "CA2", "completed") == refused  # linked by the callback
    assert [kind for kind, _ in await _events(store)] == ["call.failed"]


async def test_inbound_answers_are_recorded_once_and_isolated_by_project(store: Store) -> None:
    mine = await store.keys.ensure_project("mine")
    theirs = await store.keys.ensure_project("theirs")
    call_id = await store.calls.answered(_answer(mine, "CA3"))
    assert call_id is not None
    assert await store.calls.answered(_answer(mine, "CA3")) == call_id  # a retried webhook
    assert await store.calls.answered(_answer(theirs, "CA3")) is None
    record = await store.calls.get(mine, call_id)
    assert record is not None and record["direction"] == "inbound" and record["status"] == "dialing"
    assert await store.calls.get(theirs, call_id) is None
    assert await store.calls.stream_connected(theirs, "CA3", "sess_x") is None
    # a call_id of another project is not linked: the answer is a call of its own
    other = await store.calls.answered(_answer(theirs, "CA4", call_id=call_id))
    assert other not in (None, call_id)


async def test_list_pages_and_filters(store: Store) -> None:
    project = await store.keys.ensure_project("calls")
    ids = []
    for n in range(5):
        ids.append((await store.calls.place(project, "agent_a", "+14155550100", f"+1415555012{n}"))["id"])
    inbound = await store.calls.answered(_answer(project, "CA9"))
    await store.calls.advance(None, "", "busy", call_id=ids[0])
    first = await store.calls.list(project, PageRequest(limit=3), direction="outbound")
    assert [c["id"] for c in first.rows] == ids[::-1][:3] and first.has_more
    second = await store.calls.list(
        project, PageRequest(limit=3, cursor=first.next_cursor), direction="outbound"
    )
    assert [c["id"] for c in second.rows] == ids[::-1][3:] and not second.has_more
    with pytest.raises(InvalidCursor):
        await store.calls.list(project, PageRequest(cursor=first.next_cursor), direction="inbound")
    assert [c["id"] for c in (await store.calls.list(project, PageRequest(), direction="inbound")).rows] == [
        inbound
    ]
    refused = await store.calls.list(project, PageRequest(), status="refused")
    assert [c["id"] for c in refused.rows] == [ids[0]]
    other = await store.keys.ensure_project("other")
    assert (await store.calls.list(other, PageRequest())).rows == []
