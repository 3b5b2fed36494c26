"""What the server keeps between sessions must stay bounded: stores forget what has expired even when
nobody asks for it again (issue #7, the soak's idle-RSS criterion)."""

from __future__ import annotations

from voxgate.store.checkpoints import ClaimOutcome, MemoryCheckpointStore, SessionCheckpoint


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
