"""Sends the outbox's deliveries (``store.webhook_outbox``): one background task per instance.

It claims due deliveries in the database (so each is sent by one instance), POSTs each under the
outbound-URL policy (no private addresses unless allowed, no redirects, bounded answers) with a time
limit for the whole attempt, and records the outcome: 2xx is delivered, anything else is retried with
exponential backoff until the retry window closes. It runs beside the sessions, never inside one: a
receiver that is down, slow or never answers costs one of :data:`MAX_CONCURRENT` sending slots for at
most ``VOXGATE_WEBHOOK_TIMEOUT_SECONDS``, and a conversation never waits for it.

Headers: ``Content-Type: application/json``, ``X-AAI-Signature`` (history.signatures; absent when an
inline webhook has no secret) and ``X-AAI-Delivery-Id`` (the same on every attempt: receivers dedupe).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

import httpx

from voxgate.history.signatures import SIGNATURE_HEADER, signature_header
from voxgate.outbound.policy import DestinationRefused, OutboundPolicy, outbound_client
from voxgate.store import Store
from voxgate.store.webhook_outbox import AttemptOutcome, ClaimedDelivery, RetryPolicy
from voxgate.telemetry.history_counts import count_webhook_attempt

logger = logging.getLogger(__name__)

MAX_CONCURRENT = 16
CLAIM_BATCH = 16
LEASE_MARGIN_SECONDS = 30.0
MAX_ANSWER_BYTES = 64 * 1024
DELIVERY_ID_HEADER = "X-AAI-Delivery-Id"


class WebhookWorker:
    def __init__(
        self,
        store: Store,
        policy: OutboundPolicy,
        retry: RetryPolicy,
        *,
        instance: str,
        timeout_seconds: float,
        poll_seconds: float,
    ) -> None:
        self._store = store
        self._policy = policy
        self._retry = retry
        self._instance = instance
        self._timeout = timeout_seconds
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(MAX_CONCURRENT)
        self._sending: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """New deliveries may be due: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Run until cancelled; a database outage only delays deliveries."""
        async with outbound_client(
            self._policy, max_response_bytes=MAX_ANSWER_BYTES, timeout=self._timeout
        ) as client:
            try:
                while True:
                    claimed = await self._claim()
                    for delivery in claimed:
                        await self._slots.acquire()
                        task = asyncio.create_task(
                            self._send(client, delivery), name=f"webhook-{delivery.id}"
                        )
                        self._sending.add(task)
                        task.add_done_callback(self._sending.discard)
                    if len(claimed) < CLAIM_BATCH:
                        await self._sleep()
            finally:
                for task in list(self._sending):
                    task.cancel()
                await asyncio.gather(*self._sending, return_exceptions=True)

    async def _claim(self) -> list[ClaimedDelivery]:
        try:
            # The lease covers waiting for a sending slot (at most one attempt's time) and the attempt.
            return await self._store.outbox.claim(
                self._instance, limit=CLAIM_BATCH, lease_seconds=2 * self._timeout + LEASE_MARGIN_SECONDS
            )
        except Exception as exc:
            logger.warning("webhook worker: could not claim deliveries: %s", exc)
            return []

    async def _sleep(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._poll):
                await self._wake.wait()
        self._wake.clear()

    async def _send(self, client: httpx.AsyncClient, delivery: ClaimedDelivery) -> None:
        try:
            outcome = await self.attempt(client, delivery)
            status = await self._store.outbox.finish_attempt(delivery, outcome, self._retry, self._instance)
            outcome_name = (
                "delivered" if status == "delivered" else "failed" if status == "failed" else "retry"
            )
            count_webhook_attempt(outcome_name)
            if not outcome.delivered:
                logger.info(
                    "webhook delivery %s attempt %d failed (%s): %s",
                    delivery.id,
                    delivery.attempt,
                    outcome.http_status_code or "no answer",
                    status,
                )
        except Exception:
            logger.exception("webhook delivery %s: recording the attempt failed", delivery.id)
        finally:
            self._slots.release()

    async def attempt(self, client: httpx.AsyncClient, delivery: ClaimedDelivery) -> AttemptOutcome:
        body = delivery.body.encode()
        headers = {"Content-Type": "application/json", DELIVERY_ID_HEADER: delivery.id}
        if delivery.secret:
            headers[SIGNATURE_HEADER] = signature_header(delivery.secret, body)
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self._timeout):
                response = await client.post(delivery.url, content=body, headers=headers)
                await response.aread()
            status = response.status_code
            if not 200 <= status < 300:
                error = f"the receiver answered {status}"
        except TimeoutError:
            error = f"no answer within {self._timeout:g} s"
        except DestinationRefused as exc:
            error = f"refused by the outbound-URL policy: {exc}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return AttemptOutcome(started_at, (time.perf_counter() - started) * 1000, status, error)
