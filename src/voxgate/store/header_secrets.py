"""Write-only HTTP header secrets of HTTP tools and pre-connect requests (PROTOCOL.md §3.3, HOSTED.md §2).

Stored form of a header: ``{"name", "value_enc", "last_set_at"}`` (plus any unknown keys the client sent),
the value Fernet-encrypted with the ``SecretBox``. Write rules, per header entry of a request:
``{name, value}`` sets or rotates it, ``{name, remove: true}`` deletes it, ``{name}`` alone (or the
legacy mask ``"value": "***"``) keeps the stored value. Read back as ``{"name", "last_set_at"}``: never a
value, not even a mask.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from voxgate.outbound.forbidden_headers import header_is_forbidden
from voxgate.protocol.config import SECRET_MASK, HttpHeader, HttpSpec
from voxgate.store.document_errors import AgentDocumentError, Loc
from voxgate.store.secret_box import SecretBox
from voxgate.store.timestamps import format_timestamp

StoredHeader = dict[str, Any]


def store_http(
    http: HttpSpec, previous: dict[str, Any] | None, loc: Loc, box: SecretBox, now: datetime
) -> dict[str, Any]:
    """The stored ``http`` object; header values kept from ``previous`` (the stored ``http`` it replaces)."""
    previous_headers = {h["name"].lower(): h for h in (previous or {}).get("headers", [])}
    stored = http.model_dump(mode="json", exclude={"headers"})
    stored["headers"] = _store_headers(http.headers, previous_headers, (*loc, "headers"), box, now)
    return stored


def public_http(http: dict[str, Any]) -> dict[str, Any]:
    """A stored ``http`` object as the API returns it: header names and ``last_set_at`` only."""
    headers = [
        {**{k: v for k, v in h.items() if k not in ("value_enc", "last_set_at")},
         "name": h["name"], "last_set_at": h.get("last_set_at")}
        for h in http.get("headers", [])
        if not header_is_forbidden(h["name"])  # stored before transport headers were refused
    ]  # fmt: skip
    return {**{k: v for k, v in http.items() if k != "headers"}, "headers": headers}


def decrypted_http(http: dict[str, Any], box: SecretBox) -> dict[str, Any]:
    """A stored ``http`` object with header values decrypted, for the engine only."""
    headers = [
        {"name": h["name"], "value": box.decrypt(h["value_enc"])}
        for h in http.get("headers", [])
        if not header_is_forbidden(h["name"])
    ]
    return {**http, "headers": headers}


def _store_headers(
    headers: list[HttpHeader], previous: dict[str, StoredHeader], loc: Loc, box: SecretBox, now: datetime
) -> list[StoredHeader]:
    result: list[StoredHeader] = []
    seen: set[str] = set()
    for index, header in enumerate(headers):
        key = header.name.lower()
        if key in seen:
            raise AgentDocumentError((*loc, index, "name"), f"duplicate header '{header.name}'")
        seen.add(key)
        if header.remove:
            continue
        extras = dict(header.model_extra or {})
        if header.value is not None and header.value != SECRET_MASK:
            result.append(
                {
                    **extras,
                    "name": header.name,
                    "value_enc": box.encrypt(header.value),
                    "last_set_at": format_timestamp(now),
                }
            )
            continue
        kept = previous.get(key)
        if kept is None:
            raise AgentDocumentError(
                (*loc, index, "value"),
                f"header '{header.name}' has no stored value to keep; send a value",
                "missing",
            )
        result.append({**kept, **extras, "name": header.name})
    return result
