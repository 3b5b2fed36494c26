"""Latency of the shared session state in Redis: checkpoint save, claim (resume), lease renewal.

    .venv/bin/python bench/session_state.py [--redis redis://127.0.0.1:6379/11] [--n 500] [--sessions 100]

Prints p50/p90/p99 in milliseconds. Uses a random key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time

from cryptography.fernet import Fernet

from voxgate.store.checkpoints import SessionCheckpoint
from voxgate.store.redis_state import RedisCheckpointStore, connect_redis
from voxgate.store.secret_box import SecretBox


def _checkpoint(session_id: str, turns: int = 20) -> SessionCheckpoint:
    ledger = {"items": [{"role": "user", "text": "what is the weather like in tokyo today " * 2}] * turns}
    return SessionCheckpoint(session_id, "proj", {"system_prompt": "x" * 2000}, ledger, time.time(), 600.0)


def _report(name: str, samples: list[float]) -> None:
    q = statistics.quantiles(samples, n=100)
    print(f"{name:<22} n={len(samples):<5} p50={q[49]:.2f} ms  p90={q[89]:.2f} ms  p99={q[98]:.2f} ms")


async def main(url: str, n: int, sessions: int) -> None:
    prefix = "vgbench-" + secrets.token_hex(4)
    box = SecretBox(Fernet.generate_key())
    a = RedisCheckpointStore(connect_redis(url), box, owner="a", key_prefix=prefix)
    b = RedisCheckpointStore(connect_redis(url), box, owner="b", key_prefix=prefix)
    try:
        saves, claims = [], []
        for i in range(n):
            checkpoint = _checkpoint(f"sess_{i}")
            started = time.perf_counter()
            await a.save(checkpoint)
            saves.append((time.perf_counter() - started) * 1000)
            await a.detach(checkpoint.session_id)
            started = time.perf_counter()
            await b.claim(checkpoint.session_id, "proj")
            claims.append((time.perf_counter() - started) * 1000)
        renewals = []
        owned = [f"live_{i}" for i in range(sessions)]
        for session_id in owned:
            await a.save(_checkpoint(session_id))
        for _ in range(50):
            started = time.perf_counter()
            await a.renew_leases()
            renewals.append((time.perf_counter() - started) * 1000)
        print(f"checkpoint payload: {len(box.encrypt(str(_checkpoint('x'))))} bytes encrypted (20 turns)")
        _report("save (encrypt+Lua)", saves)
        _report("claim (Lua+decrypt)", claims)
        _report(f"renew {sessions} leases", renewals)
    finally:
        cleaner = connect_redis(url)
        keys = [key async for key in cleaner.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await cleaner.delete(*keys)
        await cleaner.aclose()
        await a.close()
        await b.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.redis, args.n, args.sessions))
