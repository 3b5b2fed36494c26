"""``X-Twilio-Signature`` computed by hand from Twilio's documented algorithm (HMAC-SHA1 over the URL
followed by the sorted form fields, base64), independently of the ``twilio`` package."""

from __future__ import annotations

import base64
import hashlib
import hmac


def twilio_signature(token: str, url: str, form: dict[str, str]) -> str:
    signed = url + "".join(f"{key}{form[key]}" for key in sorted(form))
    return base64.b64encode(hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()).decode()
