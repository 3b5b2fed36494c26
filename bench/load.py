"""Capacity of one server process: the most concurrent talking sessions it sustains.

For each level (a number of concurrent sessions) it starts a fresh server on loopback, opens that many
scripted callers (bench/scripted_caller.py) and lets every one of them talk for ``--duration`` seconds:
say a sentence at real-time pace, keep streaming silence like an open mic, wait for the whole answer,
pause 0.5-1.5 s, say the next. A level is **sustained** when, over the measured window:

- the server's input frame-processing lag p99 < ``--lag-p99-ms`` (50 ms; read exactly off the
  ``voxgate_input_frame_lag_seconds`` histogram, whose 50 ms bucket boundary is the threshold), and the
  event-loop lag p99 too (a frame waiting in the socket for a busy loop is not yet in the first figure);
- no audio was dropped: at ``session.end`` the server counted every second of audio each caller sent,
  and (instant stack) every completed answer carried all of its audio (100 ms per word from the TTS double);
- every turn was answered, and no ``session.error`` arrived;
- (embedded stack) the voice-to-voice p50 stays under ``--v2v-p50-ms`` (default 2000 ms).

It stops at the first level that fails. Reported per level: server CPU (cores, from
``process_cpu_seconds_total``), memory per session (RSS growth over the idle server / sessions), frame and
event-loop lag, voice-to-voice latency, client-side lateness (the load generator shares the machine).

Short check (about 2 minutes):

    .venv/bin/python bench/load.py --stack instant --levels 5,10 --duration 15
    .venv/bin/python bench/load.py --stack embedded --levels 1 --duration 30

Full run (about 15 minutes; on a quiet machine):

    .venv/bin/python bench/load.py --stack both --output load.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.metrics_scrape import Scrape, scrape_async
from bench.scripted_caller import CallerError, CallSummary, EncodedLine, ScriptedCaller, TurnRecord
from bench.sentences import AGENT_SENTENCES
from bench.server_stacks import STACKS, stack_server
from bench.spoken_lines import ENGINES, synthesise
from bench.stats_table import fmt, machine_line, percentile, table
from tests.doubles import MS_PER_WORD

DEFAULT_LEVELS = {"instant": "10,25,50,75,100,150,200,300", "embedded": "1,2,3,4"}
DEFAULT_DURATION = {"instant": 30.0, "embedded": 90.0}
INSTANT_TEXT = "what are your opening hours"
SYSTEM_PROMPT = "You are a friendly phone assistant. Answer in one short sentence."
OUTPUT_TOLERANCE_MS = 30.0


@dataclass
class LevelResult:
    stack: str
    sessions: int
    window_seconds: float = 0.0
    turns: list[TurnRecord] = field(default_factory=list)
    summaries: list[CallSummary] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    frame_lag_p99_ms: float | None = None
    frame_share_under_threshold: float | None = None
    frames: float = 0.0
    loop_lag_p99_ms: float | None = None
    loop_share_under_threshold: float | None = None
    gc_long_pauses: float = 0.0
    """Garbage collections that paused the process longer than the lag threshold."""
    server_cores: float | None = None
    rss_idle_mb: float | None = None
    rss_loaded_mb: float | None = None
    client_cores: float | None = None
    client_late_ms: float = 0.0
    incomplete_outputs: int = 0
    unanswered: int = 0

    @property
    def v2v(self) -> list[float]:
        return [v for t in self.turns if (v := t.voice_to_voice_ms) is not None]

    @property
    def mb_per_session(self) -> float | None:
        if self.rss_idle_mb is None or self.rss_loaded_mb is None:
            return None
        return (self.rss_loaded_mb - self.rss_idle_mb) / self.sessions

    def sustained(self, args: argparse.Namespace) -> bool:
        lag_ok = all(
            share is not None and share >= 0.99
            for share in (self.frame_share_under_threshold, self.loop_share_under_threshold)
        )
        latency_ok = True
        if self.stack == "embedded":
            p50 = percentile(self.v2v, 0.5)
            latency_ok = p50 is not None and p50 <= args.v2v_p50_ms
        return lag_ok and latency_ok and not self.problems and self.unanswered == 0


async def talk_until(
    caller: ScriptedCaller, lines: list[EncodedLine], stop_at: float, reply_timeout: float,
    rng: random.Random, result: LevelResult,
) -> None:  # fmt: skip
    """Say lines until ``stop_at``; every turn and problem goes into ``result``."""
    while time.monotonic() < stop_at and caller.connected:
        try:
            turn = caller.say(rng.choice(lines))
            reply = await caller.wait_reply(turn, within=reply_timeout)
        except CallerError as exc:
            result.unanswered += 1
            result.problems.append(str(exc))
            return
        result.turns.append(turn)
        if result.stack == "instant" and reply.status == "completed" and reply.text is not None:
            expected = len(reply.text.split()) * MS_PER_WORD
            if abs(reply.audio_ms - expected) > OUTPUT_TOLERANCE_MS:
                result.incomplete_outputs += 1
                result.problems.append(f"reply audio {reply.audio_ms:.0f} ms, expected {expected} ms")
        await caller.pause(rng.uniform(0.5, 1.5))


async def warm_up(ws_url: str, api_key: str, line: EncodedLine, reply_timeout: float) -> None:
    """One unmeasured turn: the first inference of each model pays one-off costs (allocation, caches)."""
    caller = ScriptedCaller(ws_url, api_key, {"system_prompt": SYSTEM_PROMPT})
    try:
        await caller.open()
        await caller.wait_reply(caller.say(line), within=reply_timeout)
    finally:
        await caller.end()


async def run_level(
    stack: str, sessions: int, args: argparse.Namespace, lines: list[EncodedLine]
) -> LevelResult:
    result = LevelResult(stack, sessions)
    duration = args.duration or DEFAULT_DURATION[stack]
    with tempfile.TemporaryDirectory() as tmp:
        server = stack_server(stack, Path(tmp), VOXGATE_TEST_STT_TEXT=INSTANT_TEXT).start()
        try:
            async with httpx.AsyncClient(timeout=30.0) as http:
                await _measure(
                    server.base_url, server.ws_url, server.api_key, http, result, duration, args, lines
                )
        finally:
            server.stop()
            if "Traceback" in server.log_text():
                result.problems.append(f"the server log has a traceback (level {sessions})")
    return result


async def _measure(
    base_url: str, ws_url: str, api_key: str, http: httpx.AsyncClient, result: LevelResult, duration: float,
    args: argparse.Namespace, lines: list[EncodedLine],
) -> None:  # fmt: skip
    sessions = result.sessions
    rng = random.Random(sessions)
    await warm_up(ws_url, api_key, lines[0], args.reply_timeout)
    idle = await scrape_async(base_url, http)
    result.rss_idle_mb = (idle.value("process_resident_memory_bytes") or 0) / 1e6
    callers = [ScriptedCaller(ws_url, api_key, {"system_prompt": SYSTEM_PROMPT}) for _ in range(sessions)]
    # open gradually (a burst of handshakes is not what is measured), at most 5 s in all
    spacing = min(0.05, 5.0 / sessions)
    for index, caller in enumerate(callers):
        try:
            await caller.open()
        except (CallerError, OSError) as exc:
            result.problems.append(f"session {index + 1} did not open: {exc}")
        await asyncio.sleep(spacing)
    opened = [c for c in callers if c.connected and c.summary.session_id]
    started = time.monotonic()
    stop_at = started + duration
    before: Scrape = await scrape_async(base_url, http)
    client_cpu = time.process_time()
    talkers = [
        asyncio.create_task(
            talk_until(c, lines, stop_at, args.reply_timeout, random.Random(rng.random()), result)
        )
        for c in opened
    ]
    await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
    after = await scrape_async(base_url, http)
    window = time.monotonic() - started
    result.client_cores = (time.process_time() - client_cpu) / window
    await asyncio.gather(*talkers)
    result.summaries = list(await asyncio.gather(*(c.end() for c in callers)))
    result.window_seconds = window
    frame_lag = after.histogram_since(before, "voxgate_input_frame_lag_seconds")
    result.frames = frame_lag.count
    result.frame_lag_p99_ms = _ms(frame_lag.quantile(0.99))
    result.frame_share_under_threshold = frame_lag.fraction_at_most(args.lag_p99_ms / 1000)
    loop_lag = after.histogram_since(before, "voxgate_event_loop_lag_seconds")
    result.loop_share_under_threshold = loop_lag.fraction_at_most(args.lag_p99_ms / 1000)
    result.loop_lag_p99_ms = _ms(loop_lag.quantile(0.99))
    for generation in after.labelled("voxgate_gc_pause_seconds_count", "generation"):
        pauses = after.histogram_since(before, "voxgate_gc_pause_seconds", generation=generation)
        result.gc_long_pauses += pauses.count * (1 - (pauses.fraction_at_most(args.lag_p99_ms / 1000) or 1.0))
    cpu = (after.value("process_cpu_seconds_total") or 0) - (before.value("process_cpu_seconds_total") or 0)
    result.server_cores = cpu / window
    result.rss_loaded_mb = (after.value("process_resident_memory_bytes") or 0) / 1e6
    for index, summary in enumerate(result.summaries):
        result.client_late_ms = max(result.client_late_ms, summary.max_send_lateness_ms)
        result.problems += [
            f"session {index + 1}: {e.get('code')}: {e.get('message')}" for e in summary.errors
        ]
        if not summary.audio_accounted:
            result.problems.append(
                f"session {index + 1}: sent {summary.sent_audio_seconds:.3f} s of audio, "
                f"the server counted {summary.server_audio_seconds}"
            )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def level_row(result: LevelResult, args: argparse.Namespace) -> list[str]:
    v2v = result.v2v
    cores = result.server_cores
    return [
        str(result.sessions),
        "yes" if result.sustained(args) else "**no**",
        fmt(result.frame_lag_p99_ms, 1),
        fmt(
            None if result.frame_share_under_threshold is None else 100 * result.frame_share_under_threshold,
            2,
        ),
        fmt(result.loop_lag_p99_ms, 1),
        fmt(result.gc_long_pauses, 0),
        fmt(cores, 2),
        fmt(None if cores is None else 100 * cores / result.sessions, 2),
        fmt(result.rss_idle_mb, 0),
        fmt(result.mb_per_session, 2),
        f"{len(v2v)}",
        fmt(percentile(v2v, 0.5), 0),
        fmt(percentile(v2v, 0.95), 0),
        str(len(result.problems)),
        fmt(result.client_cores, 2),
        fmt(result.client_late_ms, 0),
    ]


HEADERS = [
    "sessions", "sustained", "frame lag p99 ms", "% frames <= threshold", "loop lag p99 ms",
    "GC pauses > threshold",
    "server CPU cores", "CPU % of a core per session", "idle RSS MB", "MB per session", "turns",
    "v2v p50 ms", "v2v p95 ms", "problems", "client CPU cores", "client max late ms",
]  # fmt: skip


def summary_line(stack: str, results: list[LevelResult], args: argparse.Namespace) -> str:
    passed = [r for r in results if r.sustained(args)]
    if not passed:
        return f"**{stack}**: no level was sustained (lowest tried: {results[0].sessions} sessions)."
    best = max(passed, key=lambda r: r.sessions)
    cores = best.server_cores or 0.0
    failed = [r for r in results if not r.sustained(args)]
    broke = f"; {failed[0].sessions} sessions failed" if failed else "; no tried level failed (try higher)"
    # One process runs one event loop: it cannot use much more than one core, so a process is counted as
    # at least one core (a half-idle process does not double its sessions per core).
    per_core = best.sessions / max(cores, 1.0)
    line = (
        f"**{stack}**: {best.sessions} concurrent sessions sustained by one process{broke}. At that load the "
        f"server process used {cores:.2f} CPU cores and {fmt(best.mb_per_session, 2)} MB per session: "
        f"**{per_core:.0f} sessions per core** (sessions / max(1, cores used))."
    )
    if stack == "instant":
        met = "meets" if per_core >= 50 else f"MISSES by {50 - per_core:.0f}"
        line += f" Target >= 50 sessions per core: {met}."
    return line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", choices=[*STACKS, "both"], default="both", help="default: both")
    parser.add_argument(
        "--levels",
        help="comma-separated session counts (default instant 10,25,50,75,100,150,200,300; embedded 1,2,3,4)",
    )
    parser.add_argument(
        "--duration", type=float, help="measured seconds per level (default instant 30, embedded 90)"
    )
    parser.add_argument("--lag-p99-ms", type=float, default=50.0, help="frame-lag p99 bound (default 50)")
    parser.add_argument("--v2v-p50-ms", type=float, default=2000.0, help="embedded: voice-to-voice p50 bound")
    parser.add_argument("--reply-timeout", type=float, default=60.0, help="per answer, s (default 60)")
    parser.add_argument("--speech", choices=ENGINES, default="piper", help="caller voice (default piper)")
    parser.add_argument("--all-levels", action="store_true", help="do not stop at the first failing level")
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    args.cores = os.cpu_count() or 1
    if args.duration is not None and not 5 <= args.duration <= 1800:
        parser.error("--duration must be between 5 and 1800 seconds")
    if args.levels is not None:
        levels_for("instant", args)  # fail before any speech is synthesised
    return args


def levels_for(stack: str, args: argparse.Namespace) -> list[int]:
    text = args.levels or DEFAULT_LEVELS[stack]
    try:
        levels = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        levels = []
    if not levels or levels[0] < 1 or levels[-1] > 2000:
        raise SystemExit("--levels must be session counts between 1 and 2000")
    return levels


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = argv if argv is not None else sys.argv[1:]
    spoken = synthesise(list(AGENT_SENTENCES), args.speech)
    lines = [EncodedLine.of(line.text, line.pcm) for line in spoken]
    stacks = list(STACKS) if args.stack == "both" else [args.stack]
    sections = [
        "\n".join(
            [
                "## Concurrent sessions per process (bench/load.py)",
                "",
                f"Machine: {machine_line()}",
                f"Command: `.venv/bin/python bench/load.py {shlex.join(command)}`",
                f"Criteria: frame-processing and event-loop lag p99 < {args.lag_p99_ms:.0f} ms, all audio "
                "accounted for, "
                "every turn answered, no errors; embedded also voice-to-voice p50 <= "
                f"{args.v2v_p50_ms:.0f} ms.",
            ]
        )
    ]
    for stack in stacks:
        results: list[LevelResult] = []
        for sessions in levels_for(stack, args):
            print(f"{stack}: {sessions} sessions ...", file=sys.stderr)
            result = await run_level(stack, sessions, args, lines)
            results.append(result)
            print(table(HEADERS, [level_row(result, args)]), file=sys.stderr)
            for problem in result.problems[:5]:
                print(f"  - {problem}", file=sys.stderr)
            if not result.sustained(args) and not args.all_levels:
                break
        rows = [level_row(r, args) for r in results]
        problems = [f"- {r.sessions} sessions: {p}" for r in results for p in r.problems[:3]]
        sections.append(
            "\n".join(
                [
                    f"### {stack} stack",
                    "",
                    table(HEADERS, rows),
                    "",
                    summary_line(stack, results, args),
                    *problems,
                ]
            )
        )
    text = "\n\n".join(sections) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    asyncio.run(main())
