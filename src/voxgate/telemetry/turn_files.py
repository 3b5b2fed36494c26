"""Multiprocess mode (:mod:`voxgate.telemetry.multiprocess`): the recent turns of every worker, shared
through one small file per worker in the metrics directory, so that ``/metrics/turns`` on any worker lists
them all.

``<dir>/voxgate_turns_<pid>.jsonl`` holds a worker's recent turns, one JSON object a line, at most twice the
number kept in memory: :class:`TurnMirror` appends each new turn and rewrites the file from memory when it
reaches that; :func:`other_workers_turns` reads everyone else's.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from collections.abc import Collection
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

TURN_FILE_PREFIX = "voxgate_turns_"

TurnRecord = dict[str, Any]
"""One recent turn as ``/metrics/turns`` lists it, plus its ``project_id``."""


def own_turn_file(directory: str) -> Path:
    return Path(directory) / f"{TURN_FILE_PREFIX}{os.getpid()}.jsonl"


class TurnMirror:
    """Appends each recent turn of this worker to its file. A write error is logged once and ends the
    mirroring. Not thread-safe: call it under the caller's lock."""

    def __init__(self, limit: int) -> None:
        """``limit``: the turns kept in memory; the file is rewritten when it holds twice that."""
        self._limit = limit
        self._file: IO[str] | None = None
        self._lines = 0
        self._failed = False

    def write(self, directory: str, record: TurnRecord, in_memory: Collection[TurnRecord]) -> None:
        """Mirror ``record``, the newest of ``in_memory`` (this worker's recent turns, oldest first)."""
        if self._failed:
            return
        try:
            if self._file is None or self._lines >= 2 * self._limit:
                self._rewrite(own_turn_file(directory), in_memory)
            else:
                self._file.write(json.dumps(record) + "\n")
                self._file.flush()
                self._lines += 1
        except OSError as exc:
            self._failed = True
            logger.warning(
                "cannot share recent turns with the other workers (%s): /metrics/turns lists "
                "only the turns of the worker that answers",
                exc,
            )

    def _rewrite(self, path: Path, records: Collection[TurnRecord]) -> None:
        """The file anew from the turns in memory (the newest included), replaced atomically."""
        partial = path.with_suffix(".partial")
        partial.write_text("".join(json.dumps(record) + "\n" for record in records), "utf-8")
        os.replace(partial, path)
        if self._file is not None:
            self._file.close()
        self._file = path.open("a", encoding="utf-8")
        self._lines = len(records)


def other_workers_turns(directory: str) -> list[TurnRecord]:
    """The recent turns the other workers mirrored (unordered). Reads files: call it off the event loop."""
    own = str(own_turn_file(directory))
    records: list[TurnRecord] = []
    for path in glob.glob(os.path.join(directory, f"{TURN_FILE_PREFIX}*.jsonl")):
        if path == own:
            continue
        try:
            with open(path, encoding="utf-8") as lines:
                for line in lines:
                    try:
                        record = json.loads(line)
                    except ValueError:  # a line being written
                        continue
                    if isinstance(record, dict) and "finished_at" in record:
                        records.append(record)
        except OSError:  # rewritten or removed meanwhile
            continue
    return records
