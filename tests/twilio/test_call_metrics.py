"""A phone call is metered like a ``/v1/ws`` session: ``/metrics`` counts it as active while it lasts and
as started/ended once, and its turns appear in ``/metrics/turns`` under the agent's project."""

from __future__ import annotations

import asyncio

from bench.metrics_scrape import Scrape

from tests.doubles import MS_PER_WORD
from tests.live_server import LiveServer
from tests.metrics_polling import poll_until, scrape
from tests.twilio.conftest import PCMU, Dial, PhoneServer, phrase_audio
from tests.twilio.twilio_peer import SimulatedTwilio

SETTLE_SECONDS = 15.0


def _sessions(scraped: Scrape) -> dict[str, float]:
    return {
        "active": scraped.value("voxgate_sessions_active") or 0.0,
        "started": scraped.total("voxgate_sessions_started_total"),
        "ended": scraped.value("voxgate_sessions_ended_total", how="ended") or 0.0,
        "disconnected": scraped.value("voxgate_sessions_ended_total", how="disconnected") or 0.0,
        "unauthorized": scraped.value("voxgate_session_errors_total", code="unauthorized") or 0.0,
    }


async def idle(server: LiveServer) -> dict[str, float]:
    """The session counters once no call of an earlier test is still open on the shared server."""
    return _sessions(
        await poll_until(
            server, lambda s: (s.value("voxgate_sessions_active") or 0) == 0, SETTLE_SECONDS, _sessions
        )
    )


async def project_turns(server: LiveServer) -> list[dict[str, object]]:
    async with server.async_client() as http:
        response = await http.get("/metrics/turns", params={"limit": 2000})
    assert response.status_code == 200, response.text
    return list(response.json()["turns"])


async def test_a_call_is_counted_active_then_ended_and_its_turns_are_listed(
    phone_server: PhoneServer, dial: Dial
) -> None:
    server = phone_server.server
    agent_id = phone_server.create_agent(greeting="Hello caller.", input=PCMU, output=PCMU)
    before = await idle(server)
    seen_sessions = {turn["session_id"] for turn in await project_turns(server)}

    peer = await dial(agent_id)
    # The greeting is sent after session.ready, and the meter counts before an event goes out.
    await peer.wait_until(lambda: peer.received_ms >= 2 * MS_PER_WORD - 1)
    during = _sessions(await scrape(server))
    assert during["active"] == before["active"] + 1
    assert during["started"] == before["started"] + 1
    assert during["ended"] == before["ended"]

    await peer.say(phrase_audio("hello there"))
    answer_ms = 4 * MS_PER_WORD  # "You said hello there."
    await peer.wait_until(lambda: peer.received_ms >= 2 * MS_PER_WORD + answer_ms - 1)
    await peer.stop()
    async with asyncio.timeout(10):
        await peer.closed.wait()

    after = _sessions(
        await poll_until(
            server, lambda s: _sessions(s)["ended"] == before["ended"] + 1, SETTLE_SECONDS, _sessions
        )
    )
    assert after["active"] == before["active"]
    assert after["started"] == before["started"] + 1
    assert after["disconnected"] == before["disconnected"]

    new_turns = [turn for turn in await project_turns(server) if turn["session_id"] not in seen_sessions]
    assert {turn["session_id"] for turn in new_turns} == {new_turns[0]["session_id"]}
    assert [turn["user_turn"] for turn in new_turns] == [False, True]  # the greeting, then the answer


async def test_a_dropped_call_is_closed_once_and_a_spent_credential_counts_as_unauthorized(
    phone_server: PhoneServer,
) -> None:
    server = phone_server.server
    agent_id = phone_server.create_agent(greeting="Hello caller.", input=PCMU, output=PCMU)
    before = await idle(server)
    url, parameters = phone_server.answer(agent_id)

    peer = await SimulatedTwilio.dial(url)
    try:
        await peer.start(parameters)
        await peer.wait_until(lambda: peer.received_ms >= MS_PER_WORD)
        assert _sessions(await scrape(server))["active"] == before["active"] + 1
        await peer.hang_up_abruptly()
    finally:
        await peer.close()
    # A hang-up ends a phone session for good (it is not resumable), so it counts as ended.
    after = _sessions(
        await poll_until(
            server,
            lambda s: (s.value("voxgate_sessions_active") or 0) == before["active"],
            SETTLE_SECONDS,
            _sessions,
        )
    )
    assert after["started"] == before["started"] + 1
    assert after["ended"] + after["disconnected"] == before["ended"] + before["disconnected"] + 1

    again = await SimulatedTwilio.dial(url)
    try:
        await again.start(parameters)
        async with asyncio.timeout(10):
            await again.closed.wait()
    finally:
        await again.close()
    refused = _sessions(await scrape(server))
    assert refused["unauthorized"] == before["unauthorized"] + 1
    assert refused["started"] == after["started"]
    assert refused["active"] == before["active"]
