"""What the server keeps between sessions must stay bounded: stores forget what has expired even when
nobody asks for it again (issue #7, the soak's idle-RSS criterion)."""

from __future__ import annotations

import asyncio

import pytest

from voxgate.memory_care import HeapTrimmer
from voxgate.store.checkpoints import ClaimOutcome, MemoryCheckpointStore, SessionCheckpoint
from voxgate.telemetry.native_heap import native_heap, trim_native_heap


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def checkpoint(session_id: str) -> SessionCheckpoint:
    return SessionCheckpoint(session_id, "p1", {}, {"items": []}, started_at=0, max_duration_seconds=60)


async def test_detached_checkpoints_are_forgotten_after_grace_without_any_resume() -> None:
    clock = FakeClock()
    store = MemoryCheckpointStore(grace_seconds=30, ended_retention_seconds=3600, clock=clock)
    for index in range(1000):  # dropped connections nobody resumes
        await store.save(checkpoint(f"dropped{index}"))
        await store.detach(f"dropped{index}")
        clock.now += 1
    assert len(store) <= 31  # only those detached within the grace window
    clock.now += 31
    await store.save(checkpoint("live"))  # any later operation forgets the expired ones
    assert len(store) == 1
    assert (await store.claim("dropped999", "p1"))[0] is ClaimOutcome.NOT_FOUND


async def test_ended_ids_are_forgotten_after_retention() -> None:
    clock = FakeClock()
    store = MemoryCheckpointStore(grace_seconds=30, ended_retention_seconds=60, clock=clock)
    for index in range(500):
        await store.save(checkpoint(f"s{index}"))
        await store.end(f"s{index}")
        clock.now += 1
    assert len(store) == 0
    assert store.ended_ids <= 61
    await store.save(checkpoint("s499"))  # ended within the retention time: still refused
    assert len(store) == 0
    clock.now += 61
    await store.end("last")
    assert store.ended_ids == 1


async def test_redetach_and_claim_keep_the_grace_order() -> None:
    clock = FakeClock()
    store = MemoryCheckpointStore(grace_seconds=10, clock=clock)
    for name in ("a", "b"):
        await store.save(checkpoint(name))
        await store.detach(name)
    clock.now += 8
    assert (await store.claim("a", "p1"))[0] is ClaimOutcome.CLAIMED
    await store.detach("a")  # a new grace window for "a", now after "b"'s
    clock.now += 5  # "b" expired, "a" has 5 s left
    assert (await store.claim("b", "p1"))[0] is ClaimOutcome.NOT_FOUND
    assert len(store) == 1
    assert (await store.claim("a", "p1"))[0] is ClaimOutcome.CLAIMED
    clock.now += 100  # attached again: never expires while attached
    await store.save(checkpoint("other"))
    assert len(store) == 2


async def test_heap_trimmer_trims_once_per_busy_period_when_idle() -> None:
    sessions = [0]
    trimmed = asyncio.Queue[int]()

    def trim() -> bool:
        trimmed.put_nowait(sessions[0])
        return True

    trimmer = HeapTrimmer(lambda: sessions[0], trim=trim, idle_seconds=0.02)
    task = asyncio.create_task(trimmer.run())
    try:
        assert await asyncio.wait_for(trimmed.get(), 5) == 0  # once after start-up (model loading)
        sessions[0] = 3
        with pytest.raises(TimeoutError):  # never while sessions run
            await asyncio.wait_for(trimmed.get(), 0.2)
        sessions[0] = 0
        assert await asyncio.wait_for(trimmed.get(), 5) == 0  # the server went idle
        with pytest.raises(TimeoutError):  # idle and nothing ran since: no trim
            await asyncio.wait_for(trimmed.get(), 0.2)
        assert trimmer.trims == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_native_heap_figures_and_trim_on_glibc() -> None:
    heap = native_heap()
    if heap is None:
        pytest.skip("not glibc")
    assert heap.in_use > 0 and heap.free >= 0
    blocks = [bytearray(4096) for _ in range(5000)]  # 20 MB of C heap (over Python's 512-byte limit)
    grown = native_heap()
    assert grown is not None and grown.in_use > heap.in_use + 15_000_000
    del blocks[:-1]  # freed, but the last block keeps the heap's top: glibc keeps the rest mapped
    freed = native_heap()
    assert freed is not None and freed.free > 15_000_000
    assert trim_native_heap()
