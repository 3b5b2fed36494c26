"""The ``timeline`` artifact: every client and server event of a connection with its time.

Entries are ``{"t": <seconds since the connection opened>, "from": "client" | "server" | "voxgate",
"type": ..., ...the event's fields}``. Audio payloads are omitted, and a run of consecutive audio events
(``input.audio`` from the client, one reply's ``reply.audio``) is one entry with ``until``, the number of
``frames`` and their ``audio_ms``. ``from: "voxgate"`` entries are the server's own notes: ``barge_in``
(a reply cut by the caller, with the milliseconds of its audio that were never played),
``turn.latency`` (each turn's latency stages, conversation.timings), ``recording.failed``.

While the session runs, entries are appended to a JSON-lines spool file (nothing accumulates in memory);
:func:`assemble` turns the spool into the final JSON document, line by line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

AUDIO_EVENTS = frozenset({"input.audio", "reply.audio"})


class TimelineSpool:
    """Appends entries to ``path`` (JSON lines), merging runs of audio events."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Line-buffered: every entry reaches the file at once, so a killed process leaves its timeline.
        self._file: IO[str] | None = path.open("a", encoding="utf-8", buffering=1)
        self._run: dict[str, Any] | None = None
        self.failed: str | None = None

    def add(self, entry: dict[str, Any]) -> None:
        self._close_run()
        self._write(entry)

    def add_audio(
        self, t: float, source: str, kind: str, audio_ms: float, reply_id: str | None = None
    ) -> None:
        run = self._run
        if run is not None and run["type"] == kind and run.get("reply_id") == reply_id:
            run["until"] = t
            run["frames"] += 1
            run["audio_ms"] += audio_ms
            return
        self._close_run()
        self._run = {"t": t, "from": source, "type": kind, "until": t, "frames": 1, "audio_ms": audio_ms}
        if reply_id is not None:
            self._run["reply_id"] = reply_id

    def close(self) -> None:
        self._close_run()
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                self.failed = str(exc)
            self._file = None

    def _close_run(self) -> None:
        run, self._run = self._run, None
        if run is not None:
            run["audio_ms"] = round(run["audio_ms"], 1)
            self._write(run)

    def _write(self, entry: dict[str, Any]) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps(entry, separators=(",", ":"), ensure_ascii=False) + "\n")
        except OSError as exc:  # a full disk: the rest of the timeline is lost, the session goes on
            self.failed = str(exc)
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None


def assemble(spool: Path, target: Path, header: dict[str, Any]) -> None:
    """Write ``{...header, "events": [<spool lines>]}`` to ``target`` without loading the spool whole;
    the spool is removed afterwards. A torn last line (a killed process) is skipped."""
    partial = target.with_name(target.name + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        prefix = json.dumps(header, separators=(",", ":"), ensure_ascii=False)[:-1]
        out.write(prefix + (',"events":[' if header else '{"events":['))
        for index, line in enumerate(_entries(spool)):
            out.write(("," if index else "") + line)
        out.write("]}\n")
    partial.replace(target)
    spool.unlink(missing_ok=True)


def _entries(spool: Path) -> Iterator[str]:
    if not spool.exists():
        return
    with spool.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            text = line.strip()
            if not text:
                continue
            try:
                json.loads(text)
            except ValueError:
                continue
            yield text
