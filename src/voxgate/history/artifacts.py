"""Where artifacts live: the :class:`ArtifactStore` protocol and the default directory store.

An artifact is a file named ``<type>[-<segment>].<ext>`` (``audio.ogg``, ``timeline.json``,
``metadata.json``; a resumed session's later connections add ``audio-2.ogg`` ...) under its session's
id. Files being written while the session runs are written in place (:meth:`ArtifactStore.working_path`):
a process that is killed leaves what it wrote, playable. Another store (an S3-compatible one) would
upload the finished files in :meth:`ArtifactStore.publish` and serve links of its own.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from voxgate.history.links import ArtifactLinks

AUDIO, TIMELINE, METADATA = "audio", "timeline", "metadata"
CONTENT_TYPES = {AUDIO: "audio/ogg", TIMELINE: "application/json", METADATA: "application/json"}
EXTENSIONS = {AUDIO: "ogg", TIMELINE: "json", METADATA: "json"}
NAME_PATTERN = re.compile(r"(audio|timeline|metadata)(-[0-9]{1,4})?\.(ogg|json)")
SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")


@dataclass(frozen=True, slots=True)
class Artifact:
    type: str
    segment: int
    complete: bool = True

    @property
    def name(self) -> str:
        suffix = "" if self.segment <= 1 else f"-{self.segment}"
        return f"{self.type}{suffix}.{EXTENSIONS[self.type]}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.type]

    def to_record(self) -> dict[str, Any]:
        """As kept in the session record's ``artifacts``."""
        return {
            "type": self.type,
            "name": self.name,
            "content_type": self.content_type,
            "complete": self.complete,
            "segment": self.segment,
        }


class ArtifactStore(Protocol):
    def working_path(self, session_id: str, name: str) -> Path:
        """A local file to write the artifact to while the session runs (its directory exists)."""
        ...

    async def publish(self, session_id: str, name: str) -> None:
        """The file at :meth:`working_path` is finished: make it the stored artifact."""
        ...

    def local_file(self, session_id: str, name: str) -> Path | None:
        """The stored artifact as a local file to serve, or None."""
        ...

    def link(self, base_url: str, session_id: str, name: str) -> str:
        """A short-lived URL any HTTP client can fetch the artifact from without the API key."""
        ...

    def working_files(self, session_id: str) -> list[Path]:
        """The local files of the session (finished or being written), for salvaging a killed process's."""
        ...

    async def delete_session(self, session_id: str) -> None:
        """Remove every artifact of the session (and anything left being written)."""
        ...

    def stored_sessions(self) -> list[str]:
        """Session ids that have artifacts (for the retention sweep's orphan check)."""
        ...


class DirectoryArtifactStore:
    """Artifacts as files under ``root/<session_id>/`` on the local disk (the default)."""

    def __init__(self, root: Path, links: ArtifactLinks) -> None:
        self.root = root
        self.links = links

    def _directory(self, session_id: str) -> Path:
        if not SESSION_ID_PATTERN.fullmatch(session_id):
            raise ValueError("not a session id")
        return self.root / session_id

    def working_path(self, session_id: str, name: str) -> Path:
        directory = self._directory(session_id)
        directory.mkdir(parents=True, exist_ok=True)
        return directory / name

    async def publish(self, session_id: str, name: str) -> None:
        return None  # written in place

    def local_file(self, session_id: str, name: str) -> Path | None:
        if not NAME_PATTERN.fullmatch(name) or not SESSION_ID_PATTERN.fullmatch(session_id):
            return None
        path = self._directory(session_id) / name
        return path if path.is_file() else None

    def link(self, base_url: str, session_id: str, name: str) -> str:
        return self.links.link(base_url, session_id, name)

    def working_files(self, session_id: str) -> list[Path]:
        directory = self._directory(session_id)
        return sorted(directory.iterdir()) if directory.is_dir() else []

    async def delete_session(self, session_id: str) -> None:
        directory = self._directory(session_id)
        await asyncio.to_thread(shutil.rmtree, directory, True)

    def stored_sessions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return [entry.name for entry in self.root.iterdir() if entry.is_dir()]
