"""The check of a tool's ``parameters`` at the door: a JSON Schema an LLM can be offered.

A tool's ``parameters`` must be a valid JSON Schema (checked against its draft's metaschema with
``jsonschema-rs``; no ``$schema`` means draft 2020-12) whose top level is ``"type": "object"``, the shape
LLM tool calling requires (arguments are a JSON object). ``{}`` is accepted and means "no parameters".

Only the known drafts may be named in a top-level ``$schema``: the validator would otherwise fetch an
unknown metaschema URL from the network, which the server must never do on a client's say-so. Nested
``$schema``/``$ref`` values are not followed by the metaschema check.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs

KNOWN_METASCHEMAS = frozenset(
    {
        "http://json-schema.org/draft-04/schema",
        "http://json-schema.org/draft-06/schema",
        "http://json-schema.org/draft-07/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "https://json-schema.org/draft/2020-12/schema",
    }
)


def tool_parameters_refusal(parameters: dict[str, Any]) -> str | None:
    """Why ``parameters`` cannot be a tool's parameter schema, or None when it can."""
    if not parameters:
        return None
    dialect = parameters.get("$schema")
    if dialect is not None and (not isinstance(dialect, str) or dialect.rstrip("#") not in KNOWN_METASCHEMAS):
        return "$schema must name JSON Schema draft-04, -06, -07, 2019-09 or 2020-12"
    try:
        jsonschema_rs.meta.validate(parameters)
    except jsonschema_rs.ValidationError as exc:
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in exc.instance_path)
        return f"is not a valid JSON Schema: at parameters{where}: {exc.message}"
    except jsonschema_rs.ReferencingError as exc:  # defensive: the dialect check should prevent it
        return f"is not a valid JSON Schema: {exc}"
    if parameters.get("type") != "object":
        return 'must have "type": "object" at the top (tool arguments are a JSON object)'
    return None
