"""Find and drop the keys of a configuration object that its model does not declare.

Configuration models accept unknown keys (``ConfigModel``). Stored agents keep them; a live session
does not: ``session.update`` and the session view of a stored agent drop them with
``drop_unknown_fields``, which walks the raw JSON alongside the model's declared fields (nested models,
lists of models, optional models) and removes, in place, every key the model does not know.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

ModelShapes = Mapping[str, type[BaseModel]]


def drop_unknown_fields(
    data: Any, model: type[BaseModel], path: str = "", shapes: ModelShapes | None = None
) -> list[str]:
    """Remove from ``data`` (in place) every key ``model`` does not declare, at every depth; return their
    paths (``session.tools[0].foo``). ``shapes`` names the model of fields typed as plain dicts."""
    if not isinstance(data, dict):
        return []
    dropped: list[str] = []
    known = _known_keys(model)
    for key in list(data):
        where = f"{path}.{key}" if path else str(key)
        if key not in known:
            del data[key]
            dropped.append(where)
            continue
        field_model, many = (shapes or {}).get(key), False
        if field_model is None:
            field_model, many = _nested_model(model, known[key])
        if field_model is None:
            continue
        value = data[key]
        if many and isinstance(value, list):
            for index, item in enumerate(value):
                dropped.extend(drop_unknown_fields(item, field_model, f"{where}[{index}]"))
        elif not many:
            dropped.extend(drop_unknown_fields(value, field_model, where))
    return dropped


def _known_keys(model: type[BaseModel]) -> dict[str, str]:
    """Accepted key -> field name (names, aliases and the model's ``accepted_aliases``)."""
    known = {name: name for name in model.model_fields}
    known.update({info.alias: name for name, info in model.model_fields.items() if info.alias})
    aliases: dict[str, str] = getattr(model, "accepted_aliases", {})
    known.update(aliases)
    return known


def _nested_model(model: type[BaseModel], field_name: str) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds (``Model``, ``Model | None``) or holds a list of (``list[Model]``)."""
    return _model_in(model.model_fields[field_name].annotation)


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = get_origin(annotation)
    if origin is list:
        args = get_args(annotation)
        inner, _ = _model_in(args[0]) if args else (None, False)
        return inner, True
    if origin is Union or origin is types.UnionType:
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found[0] is not None:
                return found
    return None, False
