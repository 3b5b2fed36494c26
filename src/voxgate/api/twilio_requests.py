"""Who may post to a Twilio callback route (TWILIO.md §1), shared by the routes Twilio calls.

When ``VOXGATE_TWILIO_AUTH_TOKEN`` is set, a request must carry a valid ``X-Twilio-Signature`` over the
public URL (``VOXGATE_PUBLIC_BASE_URL`` + path and query, see ``telephony.webhook.public_url``) and its
form fields, and, when ``VOXGATE_TWILIO_ACCOUNT_SID`` is set, come from that account; otherwise 403.
Without an auth token the route is open and every request logs a warning.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.datastructures import MultiDict

from voxgate.api.rest_errors import ApiError, error_body
from voxgate.config import Settings
from voxgate.telephony.webhook import public_url, signature_is_valid

logger = logging.getLogger(__name__)


async def read_form(request: Request) -> MultiDict:
    """The form-encoded body Twilio posts (read raw: the signature covers every field as sent)."""
    return MultiDict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def authorise_twilio_request(request: Request, settings: Settings, form: MultiDict, what: str) -> None:
    """403 unless the request is signed by Twilio (when an auth token is configured). ``what`` names the
    route in log lines."""
    if not settings.twilio_auth_token:
        logger.warning(
            "UNAUTHENTICATED Twilio %s accepted: VOXGATE_TWILIO_AUTH_TOKEN is not set. "
            "Set it to check X-Twilio-Signature.",
            what,
        )
        return
    url = public_url(str(request.url), settings.public_base_url)
    signature = request.headers.get("x-twilio-signature")
    settings_header = request.headers.get("x-twilio-webhooks-signature-settings")
    if not signature_is_valid(settings.twilio_auth_token, url, form, signature, settings_header):
        logger.warning("refused a Twilio %s with a missing or invalid X-Twilio-Signature (url %s)", what, url)
        raise ApiError(403, error_body("forbidden", "invalid or missing X-Twilio-Signature"))
    if settings.twilio_account_sid and form.get("AccountSid") != settings.twilio_account_sid:
        logger.warning("refused a Twilio %s from another account", what)
        raise ApiError(403, error_body("forbidden", "the request comes from another Twilio account"))
