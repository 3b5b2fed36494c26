"""REST bodies nested too deeply: a 400 in the API's error shape, never a 500.

The agent endpoints check a body's nesting before they parse it
(:func:`voxgate.protocol.frame_limits.nesting_refusal`). Bodies that FastAPI parses itself go through
``json.loads``, which raises ``RecursionError`` for a body nested about a thousand levels deep: this
handler answers that (and any other recursion overflow while handling input) as malformed JSON.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from voxgate.api.rest_errors import malformed_json

logger = logging.getLogger(__name__)


async def _nested_too_deeply(request: Request, _exc: Exception) -> JSONResponse:
    logger.warning("refused a request nested too deeply: %s %s", request.method, request.url.path)
    return malformed_json("nested too deeply").response()


def install_recursion_guard(app: FastAPI) -> None:
    app.add_exception_handler(RecursionError, _nested_too_deeply)
