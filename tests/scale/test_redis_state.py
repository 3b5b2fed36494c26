"""RedisCheckpointStore against the real Redis: grace window, leases, exclusive claims, encryption."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable

import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from tests.scale.conftest import REDIS_URL
from voxgate.store.checkpoints import (
    CheckpointStoreUnavailable,
    ClaimOutcome,
    SessionCheckpoint,
    SessionOwnershipLost,
)
from voxgate.store.redis_state import RedisCheckpointStore, connect_redis, instance_owner_token
from voxgate.store.secret_box import SecretBox

SECRET = "Bearer tool-secret-do-not-leak"
StoreFactory = Callable[..., RedisCheckpointStore]


def checkpoint(session_id: str = "sess_1", project: str = "p1", turns: int = 1) -> SessionCheckpoint:
    return SessionCheckpoint(
        session_id=session_id,
        project_id=project,
        config={"system_prompt": "hi", "tools": [{"http": {"headers": [{"name": "A", "value": SECRET}]}}]},
        ledger={"items": [{"role": "user", "text": f"turn {i}"} for i in range(turns)]},
        started_at=time.time(),
        max_duration_seconds=600.0,
        audio_seconds=1.5,
    )


@pytest.fixture
async def make_store(redis_prefix: str) -> AsyncIterator[StoreFactory]:
    """``make(grace=5.0, lease=1.0, box=shared)``: stores acting as different instances."""
    key = Fernet.generate_key()
    prefix = f"{redis_prefix}:{secrets.token_hex(4)}"  # per test: tests reuse session ids
    stores: list[RedisCheckpointStore] = []

    def make(grace: float = 5.0, lease: float = 1.0, box: SecretBox | None = None) -> RedisCheckpointStore:
        store = RedisCheckpointStore(
            connect_redis(REDIS_URL),
            box or SecretBox(key),
            owner=instance_owner_token(f"inst{len(stores)}"),
            grace_seconds=grace,
            lease_seconds=lease,
            key_prefix=prefix,
        )
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


@pytest.fixture
async def raw_redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_detached_session_is_claimed_elsewhere_with_its_checkpoint(make_store: StoreFactory) -> None:
    a, b = make_store(), make_store()
    await a.save(checkpoint(turns=3))
    assert await b.claim("sess_1", "p1") == (ClaimOutcome.NOT_FOUND, None)  # still attached to a
    await a.detach("sess_1")
    outcome, restored = await b.claim("sess_1", "p1")
    assert outcome is ClaimOutcome.CLAIMED and restored is not None
    assert restored.ledger == checkpoint(turns=3).ledger and restored.audio_seconds == 1.5
    assert "sess_1" in b.owned_sessions


async def test_other_project_is_forbidden_and_unknown_is_not_found(make_store: StoreFactory) -> None:
    a, b = make_store(), make_store()
    await a.save(checkpoint())
    await a.detach("sess_1")
    assert (await b.claim("sess_1", "p2"))[0] is ClaimOutcome.FORBIDDEN
    assert (await b.claim("sess_nope", "p1"))[0] is ClaimOutcome.NOT_FOUND
    assert (await b.claim("sess_1", "p1"))[0] is ClaimOutcome.CLAIMED


async def test_concurrent_claims_have_exactly_one_winner(make_store: StoreFactory) -> None:
    owner = make_store()
    await owner.save(checkpoint())
    await owner.detach("sess_1")
    rivals = [make_store() for _ in range(8)]
    outcomes = await asyncio.gather(*(r.claim("sess_1", "p1") for r in rivals))
    assert [o for o, _ in outcomes].count(ClaimOutcome.CLAIMED) == 1
    assert [o for o, _ in outcomes].count(ClaimOutcome.NOT_FOUND) == 7


async def test_stale_owner_cannot_save_over_the_new_owner(make_store: StoreFactory) -> None:
    a, b = make_store(), make_store()
    await a.save(checkpoint(turns=1))
    await a.detach("sess_1")
    assert (await b.claim("sess_1", "p1"))[0] is ClaimOutcome.CLAIMED
    with pytest.raises(SessionOwnershipLost):
        await a.save(checkpoint(turns=9))
    await b.save(checkpoint(turns=2))
    await b.detach("sess_1")
    _, restored = await make_store().claim("sess_1", "p1")
    assert restored is not None and len(restored.ledger["items"]) == 2


async def test_dead_owner_lease_lapses_and_grace_counts_from_last_heartbeat(make_store: StoreFactory) -> None:
    dead = make_store(grace=3.0, lease=0.6)
    await dead.save(checkpoint())  # never renewed, never detached: the process "died" here
    saved_at = time.monotonic()
    survivor = make_store(grace=3.0, lease=0.6)
    assert (await survivor.claim("sess_1", "p1"))[0] is ClaimOutcome.NOT_FOUND  # lease still held
    redis = connect_redis(REDIS_URL)
    try:
        # Wait for the lease key to expire (Redis decides), then the session is claimable.
        while await redis.exists(survivor.lease_key("sess_1")):
            assert time.monotonic() - saved_at < 2.0, "the lease did not expire"
            await asyncio.sleep(0.05)  # polling Redis' own expiry: there is no event to await
    finally:
        await redis.aclose()
    assert (await survivor.claim("sess_1", "p1"))[0] is ClaimOutcome.CLAIMED


async def test_grace_window_expires(make_store: StoreFactory) -> None:
    a = make_store(grace=0.5, lease=0.2)
    await a.save(checkpoint())
    await a.detach("sess_1")
    await asyncio.sleep(0.8)  # the grace window is wall-clock time by definition
    assert (await make_store().claim("sess_1", "p1"))[0] is ClaimOutcome.NOT_FOUND


async def test_renewal_keeps_a_live_session_owned(make_store: StoreFactory) -> None:
    a = make_store(grace=2.0, lease=0.3)
    await a.save(checkpoint())
    a.start()  # heartbeat every 0.1 s
    await asyncio.sleep(1.0)  # > 3 leases and half the grace window; must still be owned by a
    assert (await make_store().claim("sess_1", "p1"))[0] is ClaimOutcome.NOT_FOUND
    assert await a.renew_leases() == 1


async def test_ended_session_is_gone_and_stays_gone(make_store: StoreFactory) -> None:
    a = make_store()
    await a.save(checkpoint())
    await a.end("sess_1")
    await a.save(checkpoint())  # a late save after the end does not resurrect it
    assert (await make_store().claim("sess_1", "p1"))[0] is ClaimOutcome.NOT_FOUND


async def test_payload_is_encrypted_and_needs_the_shared_key(
    make_store: StoreFactory, raw_redis: Redis
) -> None:
    a = make_store()
    await a.save(checkpoint())
    await a.detach("sess_1")
    stored = await raw_redis.hgetall(a.state_key("sess_1"))
    assert stored[b"payload"] and SECRET.encode() not in stored[b"payload"]
    assert b"turn 0" not in stored[b"payload"]
    stranger = make_store(box=SecretBox(Fernet.generate_key()))
    with pytest.raises(CheckpointStoreUnavailable, match="VOXGATE_SECRET_KEY"):
        await stranger.claim("sess_1", "p1")
    # The failed claim let go of the session: an instance with the right key still gets it.
    assert (await make_store().claim("sess_1", "p1"))[0] is ClaimOutcome.CLAIMED


async def test_unreachable_redis_fails_fast_with_a_clear_error(redis_prefix: str) -> None:
    store = RedisCheckpointStore(
        connect_redis("redis://127.0.0.1:1/0"),
        SecretBox(Fernet.generate_key()),
        owner="x",
        key_prefix=redis_prefix,
    )
    try:
        started = time.monotonic()
        with pytest.raises(CheckpointStoreUnavailable, match="Redis is unavailable"):
            await store.save(checkpoint())
        with pytest.raises(CheckpointStoreUnavailable):
            await store.claim("sess_1", "p1")
        await store.detach("sess_1")  # logged, never raised
        await store.end("sess_1")
        assert time.monotonic() - started < 10
    finally:
        await store.close()
