"""Outbound calls through Twilio's REST Calls API, with the official ``twilio`` client.

The call's ``url`` is voxgate's TwiML endpoint for the agent, so when the callee answers, Twilio fetches
the same ``<Connect><Stream>`` answer as for an inbound call. The agent should have a ``greeting``: on
an outbound call the agent speaks first (TWILIO.md §1).

``api_base_url`` sends the REST requests somewhere other than Twilio's hosts (a local fake in tests, or
an egress proxy); the client is otherwise unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

PHONE_NUMBER = re.compile(r"^\+[1-9][0-9]{6,14}$")
"""E.164: a plus sign and 7-15 digits."""
REQUEST_TIMEOUT_SECONDS = 30.0
STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
"""The call progress events Twilio reports to a ``status_callback_url``."""


class OutboundCallError(Exception):
    """The call could not be placed; the message says why."""


@dataclass(frozen=True, slots=True)
class PlacedCall:
    sid: str
    status: str


class RedirectedHttpClient(TwilioHttpClient):
    """Twilio's HTTP client with every request sent to ``api_base_url`` (same path and query)."""

    def __init__(self, api_base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_base_url = api_base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        target = urlsplit(url)
        base = urlsplit(self.api_base_url)
        rewritten = urlunsplit((base.scheme, base.netloc, base.path + target.path, target.query, ""))
        return super().request(method, rewritten, *args, **kwargs)


def check_address(value: str, what: str) -> str:
    """``value`` if it is an E.164 number (``+14155550100``), or a ``sip:``/``client:`` address."""
    if PHONE_NUMBER.match(value) or value.startswith(("sip:", "client:")):
        return value
    raise OutboundCallError(f"{what} must be an E.164 number such as +14155550100, got {value!r}")


def place_call(
    *,
    account_sid: str,
    auth_token: str,
    to: str,
    from_: str,
    twiml_url: str,
    api_base_url: str | None = None,
    status_callback_url: str | None = None,
) -> PlacedCall:
    """Ask Twilio to call ``to`` from ``from_`` and fetch TwiML from ``twiml_url`` (POST) on answer; with
    ``status_callback_url``, Twilio posts the call's progress there (:data:`STATUS_CALLBACK_EVENTS`).
    Blocking (the ``twilio`` client uses ``requests``); raises :class:`OutboundCallError`."""
    check_address(to, "--to")
    check_address(from_, "--from")
    if not account_sid or not auth_token:
        raise OutboundCallError(
            "Twilio credentials are missing: set VOXGATE_TWILIO_ACCOUNT_SID and VOXGATE_TWILIO_AUTH_TOKEN"
        )
    http_client = (
        RedirectedHttpClient(api_base_url, timeout=REQUEST_TIMEOUT_SECONDS)
        if api_base_url
        else TwilioHttpClient(timeout=REQUEST_TIMEOUT_SECONDS)
    )
    client = Client(account_sid, auth_token, http_client=http_client)
    progress: dict[str, Any] = {}
    if status_callback_url:
        progress = {
            "status_callback": status_callback_url,
            "status_callback_method": "POST",
            "status_callback_event": list(STATUS_CALLBACK_EVENTS),
        }
    try:
        call = client.calls.create(to=to, from_=from_, url=twiml_url, method="POST", **progress)
    except TwilioRestException as exc:
        raise OutboundCallError(f"Twilio refused the call ({exc.status}): {exc.msg}") from exc
    except OSError as exc:
        raise OutboundCallError(f"could not reach Twilio: {exc}") from exc
    return PlacedCall(sid=str(call.sid), status=str(call.status))
