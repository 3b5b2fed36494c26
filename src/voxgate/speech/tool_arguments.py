"""Tool arguments checked against the tool's own JSON Schema (``parameters``) before a call goes out.

A model's call whose arguments do not satisfy the schema (a required property missing, a string where an
integer is due, ...) is not passed on: the provider answers in words instead. A schema that is not itself
valid JSON Schema checks nothing (the call passes), and says so once in the log.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Any

import jsonschema_rs

logger = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 3


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    try:
        return jsonschema_rs.validator_for(json.loads(schema_json))
    except (ValueError, jsonschema_rs.ReferencingError) as exc:
        logger.warning("tool parameters are not a valid JSON Schema; arguments are not checked: %s", exc)
        return None


def argument_errors(arguments: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Why ``arguments`` do not satisfy ``schema`` (at most :data:`MAX_REPORTED_ERRORS` reasons); empty
    when they do, or when the schema is empty or unusable."""
    if not schema:
        return []
    validator = _validator(json.dumps(schema, sort_keys=True))
    if validator is None:
        return []
    errors = [error.message for error in validator.iter_errors(arguments)]
    return errors[:MAX_REPORTED_ERRORS]
