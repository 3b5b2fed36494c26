"""Short-lived signed links to artifacts, fetchable without the API key.

``/v1/artifacts/<session_id>/<name>?expires=<unix>&signature=<hex>`` where the signature is
HMAC-SHA256 (a key derived from the server's secret key, the same on every instance) over the path and
the expiry. A link whose expiry passed, or whose path or expiry was changed, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

ARTIFACTS_PATH = "/v1/artifacts"
SIGNING_PURPOSE = "artifact-links"


class ArtifactLinks:
    def __init__(self, key: bytes, lifetime_seconds: int) -> None:
        self._key = key
        self.lifetime_seconds = lifetime_seconds

    def path(self, session_id: str, name: str) -> str:
        return f"{ARTIFACTS_PATH}/{session_id}/{name}"

    def link(self, base_url: str, session_id: str, name: str, *, now: float | None = None) -> str:
        """The absolute signed URL (``base_url`` without a trailing slash)."""
        expires = int(now if now is not None else time.time()) + self.lifetime_seconds
        path = self.path(session_id, name)
        query = urlencode({"expires": expires, "signature": self._sign(path, expires)})
        return f"{base_url.rstrip('/')}{path}?{query}"

    def check(self, path: str, expires: str | None, signature: str | None) -> str | None:
        """Why the link may not be served (``"expired"``, ``"invalid"``), or None."""
        try:
            moment = int(expires or "")
        except ValueError:
            return "invalid"
        if not signature or not hmac.compare_digest(self._sign(path, moment), signature):
            return "invalid"
        if moment < time.time():
            return "expired"
        return None

    def _sign(self, path: str, expires: int) -> str:
        return hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()
