"""API keys: creation, listing, revocation and verification. Keys are stored as SHA-256 hashes only.

A key looks like ``vg_<43 url-safe chars>`` (256 bits of randomness); ``keys list`` shows its first
``KEY_PREFIX_CHARS`` characters. Every key belongs to a project; the project scopes what it can see.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voxgate.store.tables import ApiKeyRow, ProjectRow, utc_now

DEFAULT_PROJECT = "default"
KEY_PREFIX = "vg_"
KEY_PREFIX_CHARS = 12
MAX_KEY_CHARS = 512


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the project whose data the request may touch, and the key that proved it."""

    project_id: str
    key_id: str


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What may be shown about a key (never the key itself)."""

    id: str
    project_id: str
    project_name: str
    prefix: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


def hash_secret(raw: str) -> str:
    """Hex SHA-256 of a high-entropy secret (API key or token); what the database stores."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def ensure_project(self, name: str = DEFAULT_PROJECT) -> str:
        """Return the id of the project called ``name``, creating it if needed (safe under races)."""
        async with self._sessions() as session:
            project_id = await session.scalar(select(ProjectRow.id).where(ProjectRow.name == name))
            if project_id is not None:
                return project_id
            new_id = "proj_" + secrets.token_hex(8)
            session.add(ProjectRow(id=new_id, name=name, created_at=utc_now()))
            try:
                await session.commit()
                return new_id
            except IntegrityError:
                await session.rollback()
        async with self._sessions() as session:
            project_id = await session.scalar(select(ProjectRow.id).where(ProjectRow.name == name))
            if project_id is None:  # pragma: no cover - only if the row vanished in between
                raise RuntimeError(f"project {name!r} could not be created")
            return project_id

    async def create(self, project: str = DEFAULT_PROJECT, label: str = "") -> tuple[str, ApiKeyInfo]:
        """Create a key in ``project`` (by name). Returns the raw key (shown once) and its info."""
        return await self._insert(generate_api_key(), project, label)

    async def import_key(self, raw_key: str, project: str = DEFAULT_PROJECT, label: str = "") -> ApiKeyInfo:
        """Register a caller-chosen key (the ``VOXGATE_API_KEY`` bootstrap key). Idempotent: an existing
        key with the same value is returned unchanged (a revoked one stays revoked)."""
        if not raw_key or len(raw_key) > MAX_KEY_CHARS:
            raise ValueError(f"an API key must be 1-{MAX_KEY_CHARS} characters")
        existing = await self._find_by_hash(hash_secret(raw_key))
        if existing is not None:
            return existing
        try:
            _, info = await self._insert(raw_key, project, label)
        except IntegrityError:  # a concurrent start-up imported it first
            existing = await self._find_by_hash(hash_secret(raw_key))
            if existing is None:  # pragma: no cover
                raise
            return existing
        return info

    async def ensure_initial_key(self, bootstrap_key: str | None) -> str | None:
        """Start-up: register ``bootstrap_key`` (VOXGATE_API_KEY) when given; otherwise, if the database
        has no key at all, create one in the default project and return it (the caller shows it once)."""
        if bootstrap_key:
            await self.import_key(bootstrap_key, DEFAULT_PROJECT, label="bootstrap (VOXGATE_API_KEY)")
            return None
        if await self.count_all() == 0:
            raw_key, _ = await self.create(DEFAULT_PROJECT, label="initial")
            return raw_key
        return None

    async def count_active(self) -> int:
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None))
            )
            return int(count or 0)

    async def count_all(self) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(ApiKeyRow)) or 0)

    async def list(self, project: str | None = None, *, include_revoked: bool = True) -> list[ApiKeyInfo]:
        """Keys, oldest first, optionally only those of the project named ``project``."""
        query = (
            select(ApiKeyRow, ProjectRow.name)
            .join(ProjectRow, ProjectRow.id == ApiKeyRow.project_id)
            .order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        )
        if project is not None:
            query = query.where(ProjectRow.name == project)
        if not include_revoked:
            query = query.where(ApiKeyRow.revoked_at.is_(None))
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [_info(row, name) for row, name in rows]

    async def revoke(self, key_id_or_prefix: str) -> ApiKeyInfo | None:
        """Revoke the key with this id, or the only key whose shown prefix (see ``keys list``) is this text.
        Returns the revoked key, or None if nothing (or more than one key) matches."""
        async with self._sessions() as session:
            matches = (
                await session.scalars(
                    select(ApiKeyRow).where(
                        or_(ApiKeyRow.id == key_id_or_prefix, ApiKeyRow.prefix == key_id_or_prefix)
                    )
                )
            ).all()
            if len(matches) != 1:
                return None
            row = matches[0]
            if row.revoked_at is None:
                row.revoked_at = utc_now()
                await session.commit()
        return await self._find_by_id(row.id)

    async def inactive_among(self, key_ids: set[str]) -> set[str]:
        """Those of ``key_ids`` that are revoked or no longer exist."""
        if not key_ids:
            return set()
        async with self._sessions() as session:
            active = await session.scalars(
                select(ApiKeyRow.id).where(ApiKeyRow.id.in_(key_ids), ApiKeyRow.revoked_at.is_(None))
            )
            return key_ids - set(active)

    async def verify(self, raw_key: str) -> Principal | None:
        """The principal for a raw API key, or None if it is unknown or revoked."""
        if not raw_key or len(raw_key) > MAX_KEY_CHARS:
            return None
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(ApiKeyRow.id, ApiKeyRow.project_id).where(
                        ApiKeyRow.key_hash == hash_secret(raw_key), ApiKeyRow.revoked_at.is_(None)
                    )
                )
            ).first()
        return None if row is None else Principal(project_id=row.project_id, key_id=row.id)

    async def _insert(self, raw_key: str, project: str, label: str) -> tuple[str, ApiKeyInfo]:
        project_id = await self.ensure_project(project)
        row = ApiKeyRow(
            id="key_" + secrets.token_hex(8),
            project_id=project_id,
            key_hash=hash_secret(raw_key),
            prefix=raw_key[:KEY_PREFIX_CHARS],
            label=label,
            created_at=utc_now(),
            revoked_at=None,
        )
        async with self._sessions() as session:
            session.add(row)
            await session.commit()
        return raw_key, _info(row, project)

    async def _find_by_hash(self, key_hash: str) -> ApiKeyInfo | None:
        return await self._find_one(ApiKeyRow.key_hash == key_hash)

    async def _find_by_id(self, key_id: str) -> ApiKeyInfo | None:
        return await self._find_one(ApiKeyRow.id == key_id)

    async def _find_one(self, condition: object) -> ApiKeyInfo | None:
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(ApiKeyRow, ProjectRow.name)
                    .join(ProjectRow, ProjectRow.id == ApiKeyRow.project_id)
                    .where(condition)  # type: ignore[arg-type]
                )
            ).first()
        return None if found is None else _info(found[0], found[1])


def _info(row: ApiKeyRow, project_name: str) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        project_id=row.project_id,
        project_name=project_name,
        prefix=row.prefix,
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
