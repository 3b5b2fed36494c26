from __future__ import annotations

import asyncio
import threading

import pytest

from voxgate.speech.executor import ForegroundWork, InferenceExecutor


class Gate:
    """A job that signals the event loop when it starts, then blocks until released."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.started: asyncio.Future[str] = loop.create_future()
        self._release = threading.Event()

    def __call__(self) -> str:
        name = threading.current_thread().name
        self._loop.call_soon_threadsafe(self.started.set_result, name)
        if not self._release.wait(timeout=10):
            raise TimeoutError("gate never released")
        return name

    def release(self) -> None:
        self._release.set()


@pytest.fixture
async def executor():
    pool = InferenceExecutor("test", threads=1)
    yield pool
    pool.shutdown()


async def test_runs_in_its_own_named_thread_and_returns_the_result(executor: InferenceExecutor) -> None:
    name = await executor.run(lambda: threading.current_thread().name)
    assert name.startswith("voxgate-test")
    assert name != threading.current_thread().name
    assert await executor.run(divmod, 17, 5) == (3, 2)
    assert await executor.run(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]


async def test_exceptions_propagate(executor: InferenceExecutor) -> None:
    def boom() -> None:
        raise KeyError("nope")

    with pytest.raises(KeyError, match="nope"):
        await executor.run(boom)
    assert executor.queue_depth == 0


async def test_cancelled_before_start_never_runs(executor: InferenceExecutor) -> None:
    gate = Gate(asyncio.get_running_loop())
    blocker = asyncio.create_task(executor.run(gate))
    await gate.started
    ran: list[int] = []
    queued = asyncio.create_task(executor.run(ran.append, 1))
    await asyncio.sleep(0)  # let the task submit its job (one loop step, not a timed wait)
    assert executor.queue_depth == 2
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert executor.queue_depth == 1
    gate.release()
    await blocker
    await executor.run(ran.append, 2)  # the worker has drained everything queued before this job
    assert ran == [2]
    assert executor.queue_depth == 0


async def test_cancelled_while_running_lets_the_job_finish_and_drops_the_result(
    executor: InferenceExecutor,
) -> None:
    gate = Gate(asyncio.get_running_loop())
    task = asyncio.create_task(executor.run(gate))
    await gate.started
    task.cancel()
    gate.release()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await executor.run(lambda: "next") == "next"
    assert executor.queue_depth == 0


async def test_queue_depth_and_wait_stats(executor: InferenceExecutor) -> None:
    assert executor.stats()["count"] == 0
    assert executor.stats()["avg_wait_seconds"] == 0.0
    gate = Gate(asyncio.get_running_loop())
    blocker = asyncio.create_task(executor.run(gate))
    await gate.started
    waiting = [asyncio.create_task(executor.run(lambda i=i: i)) for i in range(2)]
    await asyncio.sleep(0)
    stats = executor.stats()
    assert (stats["queue_depth"], stats["waiting"], stats["running"]) == (3, 2, 1)
    assert executor.busy
    gate.release()
    assert await asyncio.gather(*waiting) == [0, 1]
    await blocker
    stats = executor.stats()
    assert stats["count"] == 3
    assert stats["queue_depth"] == 0
    # the two queued jobs waited for the gate job, so the longest wait is positive and >= the average
    assert stats["max_wait_seconds"] > 0
    assert stats["max_wait_seconds"] >= stats["avg_wait_seconds"] > 0
    assert stats["last_wait_seconds"] <= stats["max_wait_seconds"]


async def test_two_threads_run_two_jobs_at_once() -> None:
    pool = InferenceExecutor("pair", threads=2)
    loop = asyncio.get_running_loop()
    gates = [Gate(loop), Gate(loop)]
    tasks = [asyncio.create_task(pool.run(gate)) for gate in gates]
    names = await asyncio.gather(*(gate.started for gate in gates))  # both started before any release
    assert len(set(names)) == 2
    for gate in gates:
        gate.release()
    await asyncio.gather(*tasks)
    pool.shutdown()


async def test_invalid_thread_count_and_use_after_shutdown() -> None:
    with pytest.raises(ValueError, match="threads"):
        InferenceExecutor("bad", threads=0)
    pool = InferenceExecutor("closed")
    pool.shutdown()
    with pytest.raises(RuntimeError):
        await pool.run(int)
    assert pool.queue_depth == 0


def test_background_work_yields_to_foreground_work_until_it_ends() -> None:
    gate = ForegroundWork()
    gate.yield_to(5.0)  # nothing in the foreground: returns at once
    assert gate.yielded_seconds == 0.0
    waiting = threading.Event()
    done = threading.Event()

    def background() -> None:
        waiting.set()
        gate.yield_to(10.0)
        done.set()

    with gate.running():
        worker = threading.Thread(target=background)
        worker.start()
        assert waiting.wait(5)
        assert not done.wait(0.1)  # held while the foreground work runs
    assert done.wait(5)  # released when it ends, long before the 10 s cap
    worker.join(5)
    assert gate.yielded_seconds >= 0.1


def test_background_work_waits_at_most_max_wait() -> None:
    gate = ForegroundWork()
    with gate.running():
        gate.yield_to(0.05)  # a saturated foreground never stalls background work for longer
    assert 0.05 <= gate.yielded_seconds < 5
