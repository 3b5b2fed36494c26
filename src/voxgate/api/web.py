"""The browser playground: the page at ``/`` and its static assets under ``/web/``.

The page (``voxgate/web/``: plain HTML, CSS and ES modules, no build step) talks to the public API only:
REST with the API key the user types in, ``GET /v1/token`` to mint a one-time token, and
``/v1/ws?token=...`` for the call. Nothing here reads the store or the session engine. The one piece
of data the server hands the page besides files is the voice catalogue (``/web/voices.json``), taken
from ``voxgate.protocol.voices`` so the page's voice picker matches what the server validates, with what
each id plays on this server's embedded TTS (``plays``, from ``speech.voice_map``).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from voxgate.config import Settings
from voxgate.protocol.voices import BASELINE_VOICES, DEFAULT_VOICE, FEMALE_VOICES, LATER_VOICES
from voxgate.speech.voice_map import ENGINES, VoiceMap, VoiceMapError, describe_voice

router = APIRouter(include_in_schema=False)

WEB_PREFIX = "/web"
INDEX_FILE = "index.html"

# The page loads only its own scripts (plus blob: modules: the user's editable tool handler) and
# talks only to this origin (REST over http(s), the call over ws(s)).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' blob:",
        "worker-src 'self' blob:",
        "connect-src 'self' ws: wss:",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Revalidate every time (ETag / Last-Modified make that cheap): an upgraded server never serves a
# stale module graph to an open tab.
CACHE_CONTROL = "no-cache"

_CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


WEB_ROOT = Path(__file__).resolve().parent.parent / "web"


def web_root() -> Path:
    """The directory holding the page's files (package data of ``voxgate``)."""
    return WEB_ROOT


def resolve_asset(relative: str, root: Path | None = None) -> Path | None:
    """The file for ``relative`` inside the web root, or None when it does not exist or would escape
    the root (``..``, absolute paths, symlinks pointing outside)."""
    base = (root or web_root()).resolve()
    if not relative or "\x00" in relative:
        return None
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


def _file_response(request: Request, path: Path) -> Response:
    """The file, or 304 when the browser's cached copy (``If-None-Match``) is still current."""
    media_type = _CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
    headers = {**SECURITY_HEADERS, "Cache-Control": CACHE_CONTROL}
    response = FileResponse(
        path, media_type=media_type or "application/octet-stream", headers=headers, stat_result=path.stat()
    )
    etag = response.headers.get("etag")
    cached = request.headers.get("if-none-match")
    if etag and cached and etag in {tag.strip() for tag in cached.split(",")}:
        return Response(status_code=304, headers={**headers, "ETag": etag})
    return response


@router.get("/")
async def playground_page(request: Request) -> Response:
    index = resolve_asset(INDEX_FILE)
    if index is None:  # a broken install: say so instead of a bare 404
        raise HTTPException(status_code=500, detail="the playground files are missing from this install")
    return _file_response(request, index)


def _installed_voices(settings: Settings) -> dict[str, str]:
    """What each voice id plays with the embedded TTS (empty for a remote TTS or a broken voice map)."""
    if settings.tts not in ENGINES:
        return {}
    try:
        voice_map = VoiceMap.from_settings(settings, settings.tts)  # type: ignore[arg-type]
    except VoiceMapError:
        return {}
    return {
        voice: describe_voice(installed)
        for voice in (*BASELINE_VOICES, *LATER_VOICES)
        if (installed := voice_map.resolve(voice)) is not None
    }


@router.get(f"{WEB_PREFIX}/voices.json")
async def voice_catalogue(request: Request) -> JSONResponse:
    plays = _installed_voices(request.app.state.settings)
    voices = [
        {
            "voice_id": voice,
            "gender": "female" if voice in FEMALE_VOICES else "male",
            "generation": gen,
            **({"plays": plays[voice]} if voice in plays else {}),
        }
        for gen, group in (("baseline", BASELINE_VOICES), ("later", LATER_VOICES))
        for voice in group
    ]
    return JSONResponse(
        {"default": DEFAULT_VOICE, "voices": voices},
        headers={**SECURITY_HEADERS, "Cache-Control": CACHE_CONTROL},
    )


@router.get(WEB_PREFIX + "/{asset_path:path}")
async def playground_asset(request: Request, asset_path: str) -> Response:
    asset = resolve_asset(asset_path)
    if asset is None:
        raise HTTPException(status_code=404, detail="Not found")
    return _file_response(request, asset)
