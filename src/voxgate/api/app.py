"""The FastAPI application factory and its lifespan.

``create_app(settings)`` builds the app; on start-up the lifespan creates the data directory, applies
migrations, opens the store, makes sure an API key exists and sets up the speech stack loader. It
exposes ``app.state.settings``, ``app.state.store`` (voxgate.store.Store) and ``app.state.speech``
(a ``SpeechStackLoader``, or None when voxgate.speech.factory is not available) and
``app.state.shutdown_callbacks``: a list to which any module may append a callable (sync or async,
no arguments); they run in reverse order when the server stops, before the store closes.

To add a router, add its module to ``ROUTER_MODULES``; the module must define ``router``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from voxgate import __version__
from voxgate.api.agents import REQUEST_BODY_MODELS
from voxgate.api.body_limit import BodySizeLimitMiddleware
from voxgate.api.instance import start_instance
from voxgate.api.json_depth import install_recursion_guard
from voxgate.api.request_ids import RequestIdMiddleware
from voxgate.api.rest_errors import install_error_handlers
from voxgate.config import Settings
from voxgate.protocol.voices import VOICE_IDS
from voxgate.store import Store

logger = logging.getLogger(__name__)

ROUTER_MODULES: tuple[str, ...] = (
    "voxgate.api.health",
    "voxgate.api.tokens",
    "voxgate.api.agents",
    "voxgate.api.sessions",
    "voxgate.api.webhook_subscriptions",
    "voxgate.api.artifacts",
    "voxgate.api.realtime",
    "voxgate.api.metrics",
    "voxgate.api.twilio",
    "voxgate.api.calls",
    "voxgate.api.call_status_callback",
    "voxgate.api.builtin_tools",
    "voxgate.api.web",
)

SPEECH_FACTORY_MODULE = "voxgate.speech.factory"


def create_app(settings: Settings) -> FastAPI:
    """A configured app; nothing touches the disk or the database until the lifespan runs."""
    app = FastAPI(
        title="voxgate",
        version=__version__,
        description="Self-hostable, wire-compatible Voice Agent API.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.store = None
    app.state.speech = None
    app.state.shutdown_callbacks = []
    for module_name in ROUTER_MODULES:
        app.include_router(importlib.import_module(module_name).router)
    install_error_handlers(app)
    install_recursion_guard(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestIdMiddleware)  # added last: outermost, so every answer carries the id
    app.openapi = lambda: _openapi_with_request_bodies(app)  # type: ignore[method-assign]
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings)
    speech: Any = None
    try:
        created_key = await store.keys.ensure_initial_key(settings.api_key)
        if created_key is not None:
            _announce_key(created_key)
        speech = await _start_speech(settings)
        app.state.store = store
        app.state.speech = speech
        await start_instance(app)
        yield
    finally:
        for callback in reversed(app.state.shutdown_callbacks):
            await _call_quietly(callback)
        if speech is not None:
            await _call_quietly(speech.close)
        await store.close()


async def _call_quietly(callback: Callable[[], Any]) -> None:
    try:
        result = callback()
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("error during shutdown in %r", callback)


def _announce_key(raw_key: str) -> None:
    lines = (
        "",
        "voxgate: created the first API key (shown only this once; store it now):",
        f"    {raw_key}",
        "Manage keys with `voxgate keys create|list|revoke`.",
        "",
    )
    print("\n".join(lines), file=sys.stdout, flush=True)
    logger.info("created the first API key %s...", raw_key[:12])


async def _start_speech(settings: Settings) -> Any:
    try:
        factory = importlib.import_module(SPEECH_FACTORY_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != SPEECH_FACTORY_MODULE:
            raise
        logger.warning("%s is not available: realtime sessions have no speech stack", SPEECH_FACTORY_MODULE)
        return None
    loader = factory.SpeechStackLoader(settings)
    if settings.preload_models:
        try:
            await loader.get()
        except Exception as exc:
            closing = loader.close()
            if inspect.isawaitable(closing):
                await closing
            raise RuntimeError(
                f"voxgate could not load its speech models: {exc}. Check the model packages "
                "(see MODELS.md), or set VOXGATE_PRELOAD_MODELS=false to load them on first use."
            ) from exc
    return loader


def _openapi_with_request_bodies(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the agent request-body models (validated by hand, see api/agents.py)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    _, extra = models_json_schema(
        [(model, "validation") for model in REQUEST_BODY_MODELS],
        ref_template="#/components/schemas/{model}",
    )
    for name, definition in extra.get("$defs", {}).items():
        # A model FastAPI already rendered (for a response) is the same Python model: keep that one.
        components.setdefault(name, definition)
    voice_id = components.get("VoiceRef", {}).get("properties", {}).get("voice_id")
    if voice_id is not None:
        voice_id["enum"] = list(VOICE_IDS)
    app.openapi_schema = schema
    return schema
