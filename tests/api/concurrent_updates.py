"""Parallel partial updates of one agent over a live server: every acknowledged field must survive."""

from __future__ import annotations

import asyncio

from tests.api.conftest import agent_body
from tests.live_server import LiveServer

PARALLEL_UPDATES = 12
ROUNDS = 4


async def _round(server: LiveServer, round_number: int) -> list[str]:
    """Create an agent, send PARALLEL_UPDATES partial PUTs of different fields at once; return the
    acknowledged fields missing from the agent afterwards."""
    async with server.async_client() as client:
        created = await client.post("/v1/agents", json=agent_body())
        assert created.status_code == 201, created.text
        agent_id = created.json()["id"]
        updates = [{f"field_{i}": f"round {round_number} value {i}"} for i in range(PARALLEL_UPDATES)]
        updates[0] = {"greeting": f"greeting {round_number}"}
        updates[1] = {"system_prompt": f"prompt {round_number}"}
        answers = await asyncio.gather(*(client.put(f"/v1/agents/{agent_id}", json=u) for u in updates))
        assert [a.status_code for a in answers] == [200] * PARALLEL_UPDATES, [a.text for a in answers]
        stored = (await client.get(f"/v1/agents/{agent_id}")).json()
    return [key for update in updates for key, value in update.items() if stored.get(key) != value]


def assert_parallel_updates_all_land(server: LiveServer) -> None:
    lost = [asyncio.run(_round(server, n)) for n in range(ROUNDS)]
    assert lost == [[]] * ROUNDS
