"""Keep one-time credentials out of the server log: ``token=<secret>`` in a URL becomes ``token=***``.

Browsers open the realtime socket as ``/v1/ws?token=<one-time token>`` (PROTOCOL.md 2.2), and uvicorn
logs every request line with its query string: HTTP requests on the ``uvicorn.access`` logger and
WebSocket handshakes (``"WebSocket /v1/ws?token=..." [accepted]``) on ``uvicorn.error``. A token is a
credential until it is redeemed or expires, so it must not reach a log file.

- :class:`QuerySecretRedactionFilter` is a :class:`logging.Filter` that masks the value of every
  :data:`SECRET_QUERY_PARAMETERS` query parameter in a record's message and arguments (it never drops
  a record). A name matches in any case and in any percent-encoding (``?%74oken=``, ``?TOKEN=``), since
  the server decodes names before it reads them. The record is changed in place, so every handler after
  it sees the masked text.
- :func:`redacting_log_config` is uvicorn's default logging configuration with that filter on each of
  its handlers; ``voxgate serve`` passes it to uvicorn (voxgate.serve.run_server), which applies
  it in every worker process.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

SECRET_QUERY_PARAMETERS: tuple[str, ...] = ("token",)
"""Query parameters whose values are credentials."""
MASK = "***"
FILTER_NAME = "voxgate_redact_query_secrets"

_QUERY_PARAMETER = re.compile(r"(?P<name>[?&;](?P<key>[^=&;#\s\"']+)=)(?P<value>[^&;#\s\"']*)")


def _is_secret(key: str) -> bool:
    """Whether a parameter name means a secret once decoded as the server decodes it (``%74oken``,
    ``TOKEN``, ``tok%65n`` are all ``token`` to a reader that folds case)."""
    return unquote_plus(key).strip().lower() in SECRET_QUERY_PARAMETERS


def redact_query_secrets(text: str) -> str:
    """``text`` with the value of each secret query parameter replaced by :data:`MASK`."""
    return _QUERY_PARAMETER.sub(
        lambda match: match["name"] + MASK if _is_secret(match["key"]) else match.group(0), text
    )


def _redacted(value: object) -> object:
    return redact_query_secrets(value) if isinstance(value, str) else value


class QuerySecretRedactionFilter(logging.Filter):
    """Masks secret query parameter values in ``record.msg`` and ``record.args``; keeps every record.

    The arguments keep their shape (uvicorn's access formatter unpacks a 5-tuple), only string
    arguments are rewritten.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query_secrets(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_redacted(arg) for arg in args)
        elif isinstance(args, Mapping):
            record.args = {key: _redacted(value) for key, value in args.items()}
        return True


def redacting_log_config(base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: ``base`` (default: uvicorn's ``LOGGING_CONFIG``) with
    :class:`QuerySecretRedactionFilter` on every handler. ``base`` itself is not modified."""
    if base is None:
        from uvicorn.config import LOGGING_CONFIG

        base = LOGGING_CONFIG
    config: dict[str, Any] = copy.deepcopy(dict(base))
    filters: dict[str, Any] = config.setdefault("filters", {})
    filters[FILTER_NAME] = {"()": f"{__name__}.{QuerySecretRedactionFilter.__qualname__}"}
    for handler in config.get("handlers", {}).values():
        handler["filters"] = [*handler.get("filters", []), FILTER_NAME]
    return config
