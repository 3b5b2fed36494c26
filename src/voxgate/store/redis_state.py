"""Session checkpoints and ownership leases in Redis: one conversation, resumable on any instance.

``RedisCheckpointStore`` implements :class:`~voxgate.store.checkpoints.CheckpointStore` for several
voxgate instances (or ``serve --workers N`` processes) sharing one Redis. Per session id ``S`` there
are three keys (the ``{S}`` hash tag keeps them in one Redis Cluster slot):

``<prefix>:{S}:state``  hash ``payload`` (the Fernet-encrypted checkpoint), ``project``, ``owner``,
                        ``state`` (``attached``/``detached``). Expires ``resume_grace_seconds`` after the
                        last save, heartbeat or detach: that *is* the grace window.
``<prefix>:{S}:lease``  the owning instance's token, ``SET ... PX lease``; renewed every third of the
                        lease while the session is live. A dead instance's lease lapses by itself.
``<prefix>:{S}:ended``  tombstone after ``session.end`` (a resume of an ended session is not found).

Every state change is one Lua script, so it is atomic across instances: of two concurrent resumes
exactly one claims the session; a save by an instance that no longer owns the session is refused
(:class:`SessionOwnershipLost`) instead of forking the conversation.

Secrets: the checkpoint holds the effective session configuration, including decrypted HTTP-tool
header values and a bring-your-own LLM ``api_key``. The whole payload is encrypted with the store's
:class:`~voxgate.store.secret_box.SecretBox` before it leaves the process, so Redis (and its dumps and
replicas) never sees them in clear. Every instance must therefore share ``VOXGATE_SECRET_KEY``.

Failures: a Redis that cannot be reached makes ``save``/``claim`` raise
:class:`CheckpointStoreUnavailable` (the session reports ``internal_error`` and carries on); ``detach``
and ``end`` log and return (the lease then lapses on its own); heartbeats keep retrying, and leases
and checkpoints are re-established as soon as Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
from dataclasses import asdict

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from voxgate.store.checkpoints import (
    CheckpointStoreUnavailable,
    ClaimOutcome,
    SessionCheckpoint,
    SessionOwnershipLost,
)
from voxgate.store.secret_box import SecretBox, SecretDecryptionError

logger = logging.getLogger(__name__)

SOCKET_TIMEOUT_SECONDS = 2.0
"""Connect and read timeout of one Redis command: an unreachable Redis fails fast, never hangs."""
ENDED_RETENTION_SECONDS = 3600.0
"""How long an ended session's id stays known as ended."""

_SAVE = """
-- KEYS: state, lease, ended. ARGV: owner, payload, project, lease_ms, grace_ms
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
if owner and redis.call('HGET', KEYS[1], 'state') == 'detached' then return 0 end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'payload', ARGV[2], 'project', ARGV[3], 'owner', ARGV[1], 'state', 'attached')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])
return 1
"""

_RENEW = """
-- KEYS: state, lease. ARGV: owner, lease_ms, grace_ms
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'attached' then return 0 end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

_DETACH = """
-- KEYS: state, lease. ARGV: owner, grace_ms
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'detached')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""

_END = """
-- KEYS: state, lease, ended. ARGV: owner, retention_ms
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
return 1
"""

_CLAIM = """
-- KEYS: state, lease, ended. ARGV: claimant, project, lease_ms, grace_ms
-- Returns {outcome, payload}: outcome 'claimed' | 'not_found' | 'forbidden' | 'busy'.
if redis.call('EXISTS', KEYS[3]) == 1 then return {'not_found', ''} end
local fields = redis.call('HMGET', KEYS[1], 'project', 'state', 'payload')
if not fields[1] then return {'not_found', ''} end
if fields[1] ~= ARGV[2] then return {'forbidden', ''} end
if fields[2] == 'attached' and redis.call('EXISTS', KEYS[2]) == 1 then return {'busy', ''} end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'state', 'attached')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
return {'claimed', fields[3]}
"""


def instance_owner_token(instance_id: str) -> str:
    """A lease owner name unique to this process: ``<instance_id>:<pid>:<random>``."""
    return f"{instance_id}:{os.getpid()}:{secrets.token_hex(4)}"


def connect_redis(url: str) -> Redis:
    """A client that fails fast (2 s connect/read timeout, one quick retry) instead of hanging."""
    return Redis.from_url(
        url,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
        decode_responses=False,
    )


class RedisCheckpointStore:
    """Checkpoints, grace windows and ownership leases shared by every instance through Redis.

    ``start()`` begins the lease heartbeat; ``close()`` stops it (leases of still-open sessions then
    lapse after ``lease_seconds``) and closes the client.
    """

    def __init__(
        self,
        redis: Redis,
        box: SecretBox,
        *,
        owner: str,
        grace_seconds: float = 30.0,
        lease_seconds: float = 10.0,
        key_prefix: str = "voxgate",
        ended_retention_seconds: float = ENDED_RETENTION_SECONDS,
    ) -> None:
        if lease_seconds <= 0 or grace_seconds <= 0:
            raise ValueError("lease_seconds and grace_seconds must be positive")
        if lease_seconds >= grace_seconds:
            lease_seconds = grace_seconds / 2
            logger.warning(
                "session lease must be shorter than the resume grace window; using %.1f s", lease_seconds
            )
        self._redis = redis
        self._box = box
        self.owner = owner
        self.grace_seconds = grace_seconds
        self.lease_seconds = lease_seconds
        self._prefix = key_prefix
        self._ended_retention_ms = int(ended_retention_seconds * 1000)
        self._owned: set[str] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self._save = redis.register_script(_SAVE)
        self._renew = redis.register_script(_RENEW)
        self._detach = redis.register_script(_DETACH)
        self._end = redis.register_script(_END)
        self._claim = redis.register_script(_CLAIM)

    # --- keys -------------------------------------------------------------------------------------
    def state_key(self, session_id: str) -> str:
        return f"{self._prefix}:{{{session_id}}}:state"

    def lease_key(self, session_id: str) -> str:
        return f"{self._prefix}:{{{session_id}}}:lease"

    def ended_key(self, session_id: str) -> str:
        return f"{self._prefix}:{{{session_id}}}:ended"

    @property
    def _lease_ms(self) -> int:
        return int(self.lease_seconds * 1000)

    @property
    def _grace_ms(self) -> int:
        return int(self.grace_seconds * 1000)

    @property
    def owned_sessions(self) -> frozenset[str]:
        """Sessions whose lease this process holds (and renews)."""
        return frozenset(self._owned)

    # --- life cycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().create_task(self._renew_forever(), name="leases")

    async def ping(self) -> None:
        """Raise :class:`CheckpointStoreUnavailable` if Redis does not answer."""
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise CheckpointStoreUnavailable(f"Redis is unavailable: {exc}") from exc

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        await self._redis.aclose()

    # --- CheckpointStore --------------------------------------------------------------------------
    async def save(self, checkpoint: SessionCheckpoint) -> None:
        sid = checkpoint.session_id
        payload = self._box.encrypt(json.dumps(asdict(checkpoint), separators=(",", ":")))
        try:
            result = await self._save(
                keys=[self.state_key(sid), self.lease_key(sid), self.ended_key(sid)],
                args=[self.owner, payload, checkpoint.project_id, self._lease_ms, self._grace_ms],
            )
        except RedisError as exc:
            raise CheckpointStoreUnavailable(f"Redis is unavailable: {exc}") from exc
        if result == 1:
            self._owned.add(sid)
        elif result == 0:
            self._owned.discard(sid)
            raise SessionOwnershipLost(f"session {sid} is now owned by another connection")
        # -1: ended for good; nothing to keep (same as the in-memory store)

    async def detach(self, session_id: str) -> None:
        self._owned.discard(session_id)
        try:
            await self._detach(
                keys=[self.state_key(session_id), self.lease_key(session_id)],
                args=[self.owner, self._grace_ms],
            )
        except RedisError as exc:
            logger.warning("could not detach session %s (its lease will lapse): %s", session_id, exc)

    async def end(self, session_id: str) -> None:
        self._owned.discard(session_id)
        try:
            await self._end(
                keys=[self.state_key(session_id), self.lease_key(session_id), self.ended_key(session_id)],
                args=[self.owner, self._ended_retention_ms],
            )
        except RedisError as exc:
            logger.warning("could not mark session %s ended: %s", session_id, exc)

    async def claim(self, session_id: str, project_id: str) -> tuple[ClaimOutcome, SessionCheckpoint | None]:
        keys = [self.state_key(session_id), self.lease_key(session_id), self.ended_key(session_id)]
        try:
            outcome, payload = await self._claim(
                keys=keys, args=[self.owner, project_id, self._lease_ms, self._grace_ms]
            )
        except RedisError as exc:
            raise CheckpointStoreUnavailable(f"Redis is unavailable: {exc}") from exc
        if outcome == b"forbidden":
            return ClaimOutcome.FORBIDDEN, None
        if outcome != b"claimed":
            return ClaimOutcome.NOT_FOUND, None  # unknown, ended, expired, or live on another connection
        self._owned.add(session_id)
        try:
            checkpoint = SessionCheckpoint(**json.loads(self._box.decrypt(payload.decode("ascii"))))
        except (SecretDecryptionError, ValueError, TypeError) as exc:
            await self.detach(session_id)
            raise CheckpointStoreUnavailable(
                "the session checkpoint cannot be decrypted here: every instance must share "
                "VOXGATE_SECRET_KEY"
            ) from exc
        return ClaimOutcome.CLAIMED, checkpoint

    # --- leases -----------------------------------------------------------------------------------
    async def renew_leases(self) -> int:
        """Extend the lease (and grace expiry) of every session this process owns; sessions found
        owned by someone else are dropped. Returns how many were renewed."""
        owned = list(self._owned)
        if not owned:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for sid in owned:
                await self._renew(
                    keys=[self.state_key(sid), self.lease_key(sid)],
                    args=[self.owner, self._lease_ms, self._grace_ms],
                    client=pipe,
                )
            results = await pipe.execute()
        for sid, renewed in zip(owned, results, strict=True):
            if renewed != 1:
                self._owned.discard(sid)
                logger.warning("lost the lease of session %s", sid)
        return sum(1 for renewed in results if renewed == 1)

    async def _renew_forever(self) -> None:
        interval = self.lease_seconds / 3
        failing = False
        while True:
            await asyncio.sleep(interval)
            try:
                await self.renew_leases()
            except RedisError as exc:
                if not failing:
                    logger.error("cannot renew session leases, Redis is unavailable: %s", exc)
                failing = True
                continue
            if failing:
                logger.info("Redis is reachable again; session leases renewed")
            failing = False
