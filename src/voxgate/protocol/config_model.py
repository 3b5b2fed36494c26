"""The base of every agent and session configuration model.

Unknown keys are accepted at every level (``extra="allow"``, HOSTED.md's rule for unknown input): a
stored agent keeps and returns them, a ``session.update`` drops them with a log line
(``protocol.unknown_fields``). Invalid values of known fields are still validation errors.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
