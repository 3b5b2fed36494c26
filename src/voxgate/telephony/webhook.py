"""The Twilio voice webhook: who may call it, and the TwiML it answers with (TWILIO.md §1).

Twilio signs every webhook request: ``X-Twilio-Signature`` is an HMAC of the full URL it requested plus
the sorted form fields, keyed with the account's auth token. Behind a tunnel or reverse proxy the URL the
server sees (``http://127.0.0.1:8000/...``) is not the one Twilio signed (``https://public.example/...``),
so :func:`public_url` rebuilds it from ``public_base_url`` when that is configured. The check itself is
the official ``twilio`` package's ``RequestValidator``.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.twiml.voice_response import Connect, VoiceResponse

VOICE_PATH = "/twilio/voice"
MEDIA_PATH = "/twilio/media"
CALL_STATUS_PATH = "/twilio/call-status"
CALL_ID_PARAMETER = "call_id"
"""Query parameter naming the call record of ``POST /v1/calls`` on the voice and status-callback URLs."""


def public_url(request_url: str, public_base_url: str | None) -> str:
    """The URL Twilio requested: ``request_url``'s path and query on ``public_base_url`` when given
    (its path, if any, is a prefix), else ``request_url`` unchanged."""
    if not public_base_url:
        return request_url
    request = urlsplit(request_url)
    base = urlsplit(public_base_url)
    path = base.path.rstrip("/") + request.path
    return urlunsplit((base.scheme, base.netloc, path, request.query, ""))


def stream_url(base_url: str) -> str:
    """The media WebSocket URL under ``base_url`` (``https`` -> ``wss``, ``http`` -> ``ws``)."""
    base = urlsplit(base_url)
    scheme = {"https": "wss", "http": "ws"}.get(base.scheme, base.scheme)
    return urlunsplit((scheme, base.netloc, base.path.rstrip("/") + MEDIA_PATH, "", ""))


def voice_webhook_url(base_url: str, agent_id: str, call_id: str | None = None) -> str:
    """The TwiML endpoint for ``agent_id`` (what a Twilio number, or an outbound call, points at);
    ``call_id`` names the call record of an outbound call placed through ``POST /v1/calls``."""
    query = {"agent_id": agent_id} | ({CALL_ID_PARAMETER: call_id} if call_id else {})
    return _url_under(base_url, VOICE_PATH, query)


def call_status_url(base_url: str, call_id: str | None = None) -> str:
    """Where Twilio posts a call's status changes (``StatusCallback``)."""
    return _url_under(base_url, CALL_STATUS_PATH, {CALL_ID_PARAMETER: call_id} if call_id else {})


def _url_under(base_url: str, path: str, query: Mapping[str, str]) -> str:
    base = urlsplit(base_url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + path, urlencode(query), ""))


def signature_is_valid(
    auth_token: str,
    url: str,
    form: Mapping[str, str],
    signature: str | None,
    signature_settings: str | None = None,
) -> bool:
    """Whether ``signature`` (the ``X-Twilio-Signature`` header) signs ``url`` + ``form`` with
    ``auth_token``. ``signature_settings`` is the optional ``X-Twilio-Webhooks-Signature-Settings``."""
    if not signature:
        return False
    validator = RequestValidator(auth_token)
    return bool(validator.validate(url, form, signature, get_signature_algorithm(signature_settings)))


def connect_stream_twiml(media_url: str, parameters: Mapping[str, str]) -> str:
    """``<Response><Connect><Stream url=...>`` with one ``<Parameter>`` per entry (bidirectional)."""
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=media_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response.to_xml(xml_declaration=True))
