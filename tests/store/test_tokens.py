from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from tests.store.conftest import Backend
from voxgate.store import Store
from voxgate.store.tables import TokenRow, utc_now
from voxgate.store.tokens import TokenRepository


async def _project(store: Store, name: str = "default") -> str:
    return await store.keys.ensure_project(name)


async def test_token_redeems_once_with_its_grant(store: Store) -> None:
    project_id = await _project(store)
    minted = await store.tokens.mint(project_id, expires_in_seconds=60, max_session_duration_seconds=300)
    assert minted.token.startswith("vgt_") and minted.expires_in_seconds == 60
    assert timedelta(seconds=59) < minted.expires_at - utc_now() <= timedelta(seconds=60)
    grant = await store.tokens.redeem(minted.token)
    assert grant is not None
    assert grant.project_id == project_id and grant.max_session_duration_seconds == 300
    assert await store.tokens.redeem(minted.token) is None


async def test_token_is_stored_hashed(store: Store) -> None:
    minted = await store.tokens.mint(await _project(store), 60, 10_800)
    async with store.engine.connect() as connection:
        hashes = (await connection.execute(select(TokenRow.token_hash))).scalars().all()
    assert len(hashes) == 1 and minted.token not in hashes[0]


async def test_unknown_empty_and_oversized_tokens_are_refused(store: Store) -> None:
    await store.tokens.mint(await _project(store), 60, 10_800)
    assert await store.tokens.redeem("vgt_unknown") is None
    assert await store.tokens.redeem("") is None
    assert await store.tokens.redeem("x" * 100_000) is None


async def test_concurrent_redemptions_on_one_store_yield_exactly_one_grant(store: Store) -> None:
    project_id = await _project(store)
    for _ in range(5):
        minted = await store.tokens.mint(project_id, 60, 10_800)
        results = await asyncio.gather(*(store.tokens.redeem(minted.token) for _ in range(8)))
        assert sum(result is not None for result in results) == 1


async def test_concurrent_redemptions_from_two_instances_yield_exactly_one_grant(
    store: Store, backend: Backend
) -> None:
    """Two Store objects = two engines and connection pools, like two server processes."""
    other = await backend.open()
    try:
        project_id = await _project(store)
        tokens = [(await store.tokens.mint(project_id, 60, 10_800)).token for _ in range(10)]
        attempts = [repo.redeem(token) for token in tokens for repo in (store.tokens, other.tokens) * 3]
        results = await asyncio.gather(*attempts)
        per_token = [results[i * 6 : (i + 1) * 6] for i in range(len(tokens))]
        assert [sum(r is not None for r in group) for group in per_token] == [1] * len(tokens)
    finally:
        await other.close()


async def test_token_cannot_be_redeemed_after_its_window(store: Store) -> None:
    project_id = await _project(store)
    minted = await store.tokens.mint(project_id, expires_in_seconds=5, max_session_duration_seconds=60)
    late = TokenRepository(store.engine, clock=lambda: minted.expires_at + timedelta(microseconds=1))
    at_expiry = TokenRepository(store.engine, clock=lambda: minted.expires_at)
    assert await late.redeem(minted.token) is None
    assert await at_expiry.redeem(minted.token) is None
    just_before = TokenRepository(store.engine, clock=lambda: minted.expires_at - timedelta(milliseconds=1))
    assert await just_before.redeem(minted.token) is not None


async def test_minting_purges_long_expired_tokens(store: Store) -> None:
    project_id = await _project(store)
    old = TokenRepository(store.engine, clock=lambda: utc_now() - timedelta(days=1))
    await old.mint(project_id, 60, 60)
    await store.tokens.mint(project_id, 60, 60)
    async with store.engine.connect() as connection:
        count = len((await connection.execute(select(TokenRow.token_hash))).all())
    assert count == 1


async def test_a_token_is_redeemed_only_for_its_purpose(store: Store) -> None:
    project_id = await _project(store)
    realtime = await store.tokens.mint(project_id, 60, 600)
    phone = await store.tokens.mint(project_id, 60, 600, purpose="phone_stream", agent_id="agent_1")
    assert await store.tokens.redeem(realtime.token, "phone_stream") is None
    assert await store.tokens.redeem(phone.token) is None
    grant = await store.tokens.redeem(phone.token, "phone_stream")
    assert grant is not None and grant.agent_id == "agent_1" and grant.api_key_id is None
    assert await store.tokens.redeem(realtime.token) is not None


async def test_a_token_stops_working_when_the_key_that_minted_it_is_revoked(store: Store) -> None:
    raw, info = await store.keys.create("minting")
    principal = await store.keys.verify(raw)
    assert principal is not None
    kept = await store.tokens.mint(principal.project_id, 60, 600, api_key_id=info.id)
    doomed = await store.tokens.mint(principal.project_id, 60, 600, api_key_id=info.id)
    grant = await store.tokens.redeem(kept.token)
    assert grant is not None and grant.api_key_id == info.id
    await store.keys.revoke(info.id)
    assert await store.tokens.redeem(doomed.token) is None
    assert await store.keys.inactive_among({info.id, "key_unknown"}) == {info.id, "key_unknown"}
