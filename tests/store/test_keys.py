from __future__ import annotations

from sqlalchemy import select

from voxgate.store import DEFAULT_PROJECT, Store
from voxgate.store.keys import KEY_PREFIX_CHARS, hash_secret
from voxgate.store.tables import ApiKeyRow


async def test_created_key_verifies_and_is_stored_only_as_a_hash(store: Store) -> None:
    raw, info = await store.keys.create("acme", label="ci")
    assert raw.startswith("vg_") and len(raw) > 40
    principal = await store.keys.verify(raw)
    assert principal is not None
    assert principal.key_id == info.id and principal.project_id == info.project_id
    assert info.project_name == "acme" and info.label == "ci"
    assert info.prefix == raw[:KEY_PREFIX_CHARS]
    async with store.engine.connect() as connection:
        rows = (await connection.execute(select(ApiKeyRow.key_hash, ApiKeyRow.prefix))).all()
    assert [row.key_hash for row in rows] == [hash_secret(raw)]
    assert [row.prefix for row in rows] == [raw[:KEY_PREFIX_CHARS]]


async def test_unknown_empty_and_oversized_keys_do_not_verify(store: Store) -> None:
    raw, _ = await store.keys.create()
    assert await store.keys.verify(raw + "x") is None
    assert await store.keys.verify("") is None
    assert await store.keys.verify("vg_" + "a" * 10_000) is None
    assert await store.keys.verify("' OR 1=1 --") is None


async def test_keys_of_one_project_share_it_and_projects_are_distinct(store: Store) -> None:
    a1, _ = await store.keys.create("a")
    a2, _ = await store.keys.create("a")
    b1, _ = await store.keys.create("b")
    pa1, pa2, pb1 = [await store.keys.verify(k) for k in (a1, a2, b1)]
    assert pa1 and pa2 and pb1
    assert pa1.project_id == pa2.project_id != pb1.project_id
    assert pa1.key_id != pa2.key_id


async def test_revoke_by_id_and_by_prefix(store: Store) -> None:
    first, first_info = await store.keys.create()
    second, second_info = await store.keys.create()
    revoked = await store.keys.revoke(first_info.id)
    assert revoked is not None and revoked.revoked_at is not None
    assert await store.keys.verify(first) is None
    assert await store.keys.verify(second) is not None
    assert await store.keys.revoke(second_info.prefix) is not None
    assert await store.keys.verify(second) is None
    assert await store.keys.revoke("key_doesnotexist") is None
    listed = await store.keys.list()
    assert {k.id for k in listed} == {first_info.id, second_info.id}
    assert all(k.revoked_at is not None for k in listed)
    assert await store.keys.list(include_revoked=False) == []


async def test_list_filters_by_project_and_never_holds_the_key(store: Store) -> None:
    raw_a, _ = await store.keys.create("a")
    await store.keys.create("b")
    listed = await store.keys.list("a")
    assert [k.project_name for k in listed] == ["a"]
    assert raw_a not in repr(listed)


async def test_initial_key_is_created_once_on_an_empty_database(store: Store) -> None:
    raw = await store.keys.ensure_initial_key(None)
    assert raw is not None
    principal = await store.keys.verify(raw)
    assert principal is not None
    assert await store.keys.ensure_initial_key(None) is None
    assert await store.keys.count_all() == 1
    (info,) = await store.keys.list()
    assert info.project_name == DEFAULT_PROJECT


async def test_bootstrap_key_is_honoured_idempotently_and_replaces_the_generated_one(store: Store) -> None:
    assert await store.keys.ensure_initial_key("my-known-key") is None
    assert await store.keys.ensure_initial_key("my-known-key") is None
    assert await store.keys.count_all() == 1
    principal = await store.keys.verify("my-known-key")
    assert principal is not None


async def test_a_revoked_bootstrap_key_stays_revoked(store: Store) -> None:
    await store.keys.ensure_initial_key("boot-key-1")
    (info,) = await store.keys.list()
    await store.keys.revoke(info.id)
    await store.keys.ensure_initial_key("boot-key-1")
    assert await store.keys.verify("boot-key-1") is None


async def test_ensure_project_is_stable(store: Store) -> None:
    first = await store.keys.ensure_project("x")
    assert await store.keys.ensure_project("x") == first
    assert await store.keys.ensure_project("y") != first
