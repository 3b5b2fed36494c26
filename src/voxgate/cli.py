"""The ``voxgate`` command line: ``serve``, ``keys create|list|revoke``, ``models``, ``talk``.

Settings come from ``VOXGATE_*`` environment variables (voxgate.config.Settings); options given on the
command line override them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from voxgate.config import Settings
from voxgate.store import DEFAULT_PROJECT, ApiKeyInfo, Store

app = typer.Typer(
    help="voxgate: a self-hostable, wire-compatible Voice Agent API server.", no_args_is_help=True
)
keys_app = typer.Typer(help="Manage API keys (stored hashed; a key is shown only when created).")
app.add_typer(keys_app, name="keys")

T = TypeVar("T")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: VOXGATE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default: VOXGATE_PORT).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes sharing the port (one per core). More than one needs VOXGATE_REDIS_URL "
            "(and a database every worker can reach); /metrics on any worker then reports all of them.",
        ),
    ] = 1,
) -> None:
    """Run the HTTP + WebSocket server. SIGTERM drains sessions and phone calls (VOXGATE_DRAIN_SECONDS)."""
    from voxgate.serve import run_server, workers_problem

    settings = Settings()
    if (problem := workers_problem(settings, workers)) is not None:
        raise typer.BadParameter(problem, param_hint="--workers")
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    run_server(settings, workers=workers)


@app.command()
def models() -> None:
    """List the model files voxgate uses: package, path, size, and whether the sha256 verified."""
    from voxgate.speech.models import list_models

    infos = list_models(Settings())
    failed = False
    for info in infos:
        size = f"{info.size / 1e6:.1f} MB" if info.size is not None else "-"
        if info.verified:
            status = "verified"
        elif info.user_configured:
            status = "configured path (not hash-pinned)"
        elif info.optional:
            status = f"optional, not installed ({info.error})"
        else:
            status = f"NOT OK: {info.error}"
            failed = True
        typer.echo(f"{info.name:<28} {size:>9}  {status}")
        typer.echo(f"    package: {info.package}")
        if info.path is not None:
            typer.echo(f"    path:    {info.path}")
    if failed:
        raise typer.Exit(code=1)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def talk(ctx: typer.Context) -> None:
    """Talk to a running server from a WAV file (prints transcripts, saves the agent's audio), or chat in
    text with --text (lines from --say or standard input).

    Options: WAV [--url ws://127.0.0.1:8000/v1/ws] [--api-key KEY] [--out reply.wav] [--agent-id ID]
    [--system-prompt TEXT] [--greeting TEXT] [--voice ID] [--timeout S] [--text [--say LINE ...]]
    """
    from voxgate.talk_client import main

    raise typer.Exit(code=main(list(ctx.args)))


@keys_app.command("create")
def keys_create(
    project: Annotated[
        str, typer.Option(help="Project the key belongs to (created if new).")
    ] = DEFAULT_PROJECT,
    label: Annotated[str, typer.Option(help="A note to recognise the key by.")] = "",
) -> None:
    """Create an API key and print it (it cannot be shown again)."""
    raw_key, info = _with_store(lambda store: store.keys.create(project, label))
    typer.echo(raw_key)
    typer.echo(f"id {info.id}  project {info.project_name}  (shown once: store it now)", err=True)


@keys_app.command("list")
def keys_list(
    project: Annotated[str | None, typer.Option(help="Only keys of this project.")] = None,
) -> None:
    """List keys: id, shown prefix, project, label, created, status."""
    keys = _with_store(lambda store: store.keys.list(project))
    if not keys:
        typer.echo("no keys", err=True)
        return
    typer.echo(f"{'ID':<21} {'PREFIX':<16} {'PROJECT':<16} {'CREATED':<20} {'STATUS':<8} LABEL")
    for key in keys:
        typer.echo(_key_line(key))


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id (key_...) or the prefix shown by `keys list`.")],
) -> None:
    """Revoke a key: it stops working at once."""
    info = _with_store(lambda store: store.keys.revoke(key))
    if info is None:
        typer.echo(f"no single key matches {key!r}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"revoked {info.id} ({info.prefix}...)")


@app.command()
def call(
    agent: Annotated[str, typer.Option("--agent", help="Id of the stored agent that talks on the call.")],
    to: Annotated[str, typer.Option("--to", help="Number to call, E.164 (e.g. +14155550100).")],
    from_: Annotated[str, typer.Option("--from", help="Your Twilio number to call from, E.164.")],
    base_url: Annotated[
        str | None, typer.Option(help="Public base URL of this server (default: VOXGATE_PUBLIC_BASE_URL).")
    ] = None,
) -> None:
    """Place an outbound phone call through Twilio with a stored agent (see docs/twilio.md)."""
    from voxgate.telephony.outbound import OutboundCallError, place_call
    from voxgate.telephony.webhook import voice_webhook_url

    settings = Settings()
    public_base = base_url or settings.public_base_url
    if not public_base:
        typer.echo("set VOXGATE_PUBLIC_BASE_URL (or --base-url): Twilio must reach this server", err=True)
        raise typer.Exit(code=2)

    async def greeting_of(store: Store) -> tuple[bool, str | None]:
        project_id = await store.agents.project_of(agent)
        config = None if project_id is None else await store.agents.load_for_session(project_id, agent)
        return config is not None, config.greeting if config is not None else None

    found, greeting = _with_store(greeting_of)
    if not found:
        typer.echo(f"no agent {agent!r}", err=True)
        raise typer.Exit(code=1)
    if not greeting:
        typer.echo("warning: the agent has no greeting; the callee hears silence until they speak", err=True)
    try:
        placed = place_call(
            account_sid=settings.twilio_account_sid or "",
            auth_token=settings.twilio_auth_token or "",
            to=to,
            from_=from_,
            twiml_url=voice_webhook_url(public_base, agent),
            api_base_url=settings.twilio_api_base_url,
        )
    except OutboundCallError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(placed.sid)
    typer.echo(f"call {placed.sid} {placed.status}: {to} <- {from_}", err=True)


def _key_line(key: ApiKeyInfo) -> str:
    status = "revoked" if key.revoked_at is not None else "active"
    created = key.created_at.strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{key.id:<21} {key.prefix + '...':<16} {key.project_name:<16} {created:<20} {status:<8} {key.label}"
    )


def _with_store(action: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = await Store.open(Settings())
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(run())
