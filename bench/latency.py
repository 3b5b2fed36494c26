"""Voice-to-voice latency over ``/v1/ws``: scripted spoken conversations at real-time pace.

For each stack (``instant`` = real VAD + instant provider doubles, i.e. the server's own overhead;
``embedded`` = the offline model stack) it starts a server on loopback (or uses ``--url``), then runs
``--conversations`` conversations one after the other, each of ``--turns`` turns: the caller says a
synthesised sentence (Piper joe by default), keeps streaming silence like an open microphone, waits for the
whole answer, pauses, and says the next one. It reports, as Markdown:

- client-measured voice-to-voice latency: the user's last speech sample (on the real-time mic clock) ->
  the first ``reply.audio`` received; and ``input.speech.stopped`` received -> first ``reply.audio``;
- every server-side stage of the same turns, read from the server's ``GET /metrics/turns``;
- inference queue waits per model, from the ``/metrics`` histograms.

A short check (about 1 minute with both stacks, models already assembled):

    .venv/bin/python bench/latency.py --conversations 1 --turns 2

The full run (about 10 minutes; on a quiet machine):

    .venv/bin/python bench/latency.py --conversations 10 --turns 3 --output latency.md
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.metrics_scrape import Scrape, scrape
from bench.scripted_caller import CallerError, EncodedLine, ScriptedCaller, TurnRecord
from bench.sentences import AGENT_SENTENCES
from bench.server_stacks import STACKS, stack_server
from bench.spoken_lines import ENGINES, synthesise
from bench.stats_table import fmt, machine_line, p50_p95_max, percentile, table

from voxgate.telemetry.turn_stages import TURN_STAGES

SYSTEM_PROMPT = "You are a friendly phone assistant. Answer in one short sentence."
SERVER_OVERHEAD_TARGET_MS = 20.0
EMBEDDED_P50_TARGET_MS = 1000.0


@dataclass
class StackRun:
    stack: str
    turns: list[TurnRecord] = field(default_factory=list)
    server_stages: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    inference_wait: dict[str, tuple[float | None, float | None, float]] = field(default_factory=dict)
    """model -> (p50 s, p95 s, count) of the queue wait."""


async def run_conversations(
    url: str, api_key: str, lines: list[EncodedLine], conversations: int, turns: int, pause: float,
    reply_timeout: float,
) -> tuple[list[TurnRecord], list[str], list[str]]:  # fmt: skip
    """Run the conversations one after the other; returns (turns, session ids, problems)."""
    records: list[TurnRecord] = []
    sessions: list[str] = []
    problems: list[str] = []
    for conversation in range(conversations):
        caller = ScriptedCaller(url, api_key, {"system_prompt": SYSTEM_PROMPT})
        try:
            sessions.append(await caller.open())
            for turn_index in range(turns):
                line = lines[(conversation * turns + turn_index) % len(lines)]
                turn = caller.say(line)
                await caller.wait_reply(turn, within=reply_timeout)
                records.append(turn)
                await caller.pause(pause)
        except CallerError as exc:
            problems.append(f"conversation {conversation + 1}: {exc}")
        finally:
            summary = await caller.end()
        problems += [f"conversation {conversation + 1}: {error}" for error in summary.errors]
        if summary.ended and not summary.audio_accounted:
            problems.append(
                f"conversation {conversation + 1}: sent {summary.sent_audio_seconds:.3f} s of audio, "
                f"the server counted {summary.server_audio_seconds} s"
            )
    return records, sessions, problems


def server_stages(
    base_url: str, api_key: str, sessions: list[str], reply_ids: set[str]
) -> dict[str, list[float]]:
    response = httpx.get(
        f"{base_url}/metrics/turns",
        params={"session_id": sessions, "limit": 2000},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=10.0,
    )
    response.raise_for_status()
    stages: dict[str, list[float]] = {name: [] for name, _, _ in TURN_STAGES}
    for turn in response.json()["turns"]:
        if turn["reply_id"] not in reply_ids:
            continue
        for name, value in turn["stages_ms"].items():
            if value is not None and name in stages:
                stages[name].append(value)
    return stages


def inference_waits(before: Scrape, after: Scrape) -> dict[str, tuple[float | None, float | None, float]]:
    models = sorted(after.labelled("voxgate_inference_wait_seconds_count", "model"))
    result = {}
    for model in models:
        delta = after.histogram_since(before, "voxgate_inference_wait_seconds", model=model)
        if delta.count > 0:
            result[model] = (delta.quantile(0.5), delta.quantile(0.95), delta.count)
    return result


async def measure_stack(stack: str, args: argparse.Namespace, lines: list[EncodedLine]) -> StackRun:
    run = StackRun(stack)
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if args.url:
            base_url, ws_url, api_key = (
                args.url.rstrip("/"),
                args.url.rstrip("/").replace("http", "ws", 1),
                args.api_key,
            )
            ws_url += "/v1/ws"
        else:
            print(f"starting a {stack} server ...", file=sys.stderr)
            server = stack_server(stack, Path(tmp), VOXGATE_TEST_STT_TEXT=args.instant_text).start()
            base_url, ws_url, api_key = server.base_url, server.ws_url, server.api_key
        try:
            # one unmeasured turn first: the first inference of each model pays one-off costs
            await run_conversations(ws_url, api_key, lines[-1:], 1, 1, 0.2, args.reply_timeout)
            before = scrape(base_url)
            turns, sessions, problems = await run_conversations(
                ws_url, api_key, lines, args.conversations, args.turns, args.pause, args.reply_timeout
            )
            after = scrape(base_url)
            run.turns, run.errors = turns, problems
            reply_ids = {t.reply.reply_id for t in turns if t.reply is not None and t.reply.reply_id}
            run.server_stages = server_stages(base_url, api_key, sessions, reply_ids)
            run.inference_wait = inference_waits(before, after)
        finally:
            if server is not None:
                server.stop()
    return run


def report(run: StackRun) -> str:
    v2v = [v for t in run.turns if (v := t.voice_to_voice_ms) is not None]
    stopped = [v for t in run.turns if (v := t.stopped_to_audio_ms) is not None]
    transcript = [v for t in run.turns if (v := t.after_speech_ms(t.transcript_at)) is not None]
    rows = [
        ["**voice-to-voice** (client: user stopped -> first reply.audio)", *p50_p95_max(v2v)],
        ["client: user stopped -> transcript.user", *p50_p95_max(transcript)],
        ["client: input.speech.stopped -> first reply.audio", *p50_p95_max(stopped)],
    ]
    for name, values in run.server_stages.items():
        rows.append([f"server: {name}", *p50_p95_max(values, 1)])
    for model, (p50, p95, count) in run.inference_wait.items():
        rows.append([f"server: {model} queue wait", str(int(count)), fmt(_ms(p50), 1), fmt(_ms(p95), 1), "–"])
    out = [f"### {run.stack} stack", "", table(["measure (ms)", "n", "p50", "p95", "max"], rows), ""]
    completed = sum(1 for t in run.turns if t.reply is not None and t.reply.status == "completed")
    cut = [t for t in run.turns if t.cut_replies]
    out.append(
        f"Turns answered: {completed} of {len(run.turns)}; split at a pause: {len(cut)}; "
        f"problems: {len(run.errors)}."
    )
    out += [f"- {problem}" for problem in run.errors[:10]]
    out += [
        f"- not answered: said {t.line!r}, heard {t.transcript!r}, reply {t.reply and t.reply.status}"
        for t in run.turns
        if t.reply is None or t.reply.status != "completed"
    ][:10]
    out += [
        f"- split: said {t.line!r}, heard {t.transcript!r}; {len(t.cut_replies)} reply started before the "
        f"caller finished ({', '.join(str(r.status) for r in t.cut_replies)})"
        for t in cut
    ][:10]
    out.append("")
    out.append(verdict(run, v2v))
    return "\n".join(out)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def verdict(run: StackRun, v2v: list[float]) -> str:
    if run.stack == "instant":
        overhead = run.server_stages.get("end_of_turn_to_first_audio_sent", [])
        p95 = percentile(overhead, 0.95)
        if p95 is None:
            return "Server overhead: no measurement."
        met = "meets" if p95 <= SERVER_OVERHEAD_TARGET_MS else "MISSES"
        return (
            f"Server overhead (end of turn -> first reply.audio sent, instant providers) p95 = {p95:.1f} ms: "
            f"{met} the <= {SERVER_OVERHEAD_TARGET_MS:.0f} ms target."
        )
    p50 = percentile(v2v, 0.5)
    if p50 is None:
        return "Voice-to-voice: no measurement."
    met = "meets" if p50 <= EMBEDDED_P50_TARGET_MS else f"MISSES by {p50 - EMBEDDED_P50_TARGET_MS:.0f} ms"
    return f"Embedded voice-to-voice p50 = {p50:.0f} ms: {met} the <= {EMBEDDED_P50_TARGET_MS:.0f} ms target."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", choices=[*STACKS, "both"], default="both", help="default: both")
    parser.add_argument("--conversations", type=int, default=10, help="conversations per stack (default 10)")
    parser.add_argument("--turns", type=int, default=3, help="turns per conversation (default 3)")
    parser.add_argument("--pause", type=float, default=1.0, help="silence after each answer, s (default 1)")
    parser.add_argument("--reply-timeout", type=float, default=60.0, help="per answer, s (default 60)")
    parser.add_argument("--speech", choices=ENGINES, default="piper", help="caller voice (default piper)")
    parser.add_argument("--instant-text", default="what are your opening hours",
                        help="what the instant STT double hears")  # fmt: skip
    parser.add_argument("--url", help="use this running server (http://host:port) instead of starting one")
    parser.add_argument("--api-key", help="API key for --url")
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    if args.url and not args.api_key:
        parser.error("--url needs --api-key")
    if args.url and args.stack == "both":
        parser.error("with --url, say which stack the server runs (--stack instant|embedded)")
    for name in ("conversations", "turns"):
        if not 1 <= getattr(args, name) <= 1000:
            parser.error(f"--{name} must be between 1 and 1000")
    return args


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spoken = synthesise(list(AGENT_SENTENCES), args.speech)
    lines = [EncodedLine.of(line.text, line.pcm) for line in spoken]
    stacks = list(STACKS) if args.stack == "both" else [args.stack]
    command = argv if argv is not None else sys.argv[1:]
    header = [
        "## Voice-to-voice latency (bench/latency.py)",
        "",
        f"Machine: {machine_line()}",
        f"Command: `.venv/bin/python bench/latency.py {shlex.join(command)}`",
        f"{args.conversations} conversations x {args.turns} turns per stack, caller voice {args.speech}, "
        "one conversation at a time.",
        "",
    ]
    sections = ["\n".join(header)]
    for stack in stacks:
        run = await measure_stack(stack, args, lines)
        sections.append(report(run))
        print(sections[-1] + "\n", file=sys.stderr)
    text = "\n\n".join(sections) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    asyncio.run(main())
