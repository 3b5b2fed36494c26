"""Soak: sessions connect, talk, interrupt and disconnect in a loop; the server must not leak or fail.

One server (real Silero VAD, instant provider doubles; the STT double hears "tell me a long story", so
every answer is a ~6 s story) and ``--sessions`` workers. Each worker loops, first for ``--warmup`` seconds,
then (after the server has gone idle once) for the measured ``--duration``:

1. connect and configure; say a line; as soon as the agent's story is playing, say another line over
   it (a barge-in: the story must end ``interrupted``); let the answer to that play to the end;
2. end the session with ``session.end`` (3 times in 4; the server must have counted every second of
   audio sent) or just drop the connection (1 in 4; the session stays resumable for the grace period);
3. reconnect after up to 0.5 s.

Reported: cycles, turns, barge-ins, errors (client-side events, the server's error counters, tracebacks
in its log) and the leak check: the idle server after the warm-up against the idle server after the soak,
both taken once every dropped session's grace period has passed: RSS growth (target < 5 %), asyncio
tasks, threads and open file descriptors (target: no growth). The warm-up runs the same load so that what
is sized by concurrency (the database connection pool and its threads) is at its working size in both.
``/metrics`` is also sampled every ``--sample-every`` seconds during the soak (RSS under load, fds, tasks).

Short check (about 1 minute):

    .venv/bin/python bench/soak.py --sessions 3 --duration 30 --warmup 10

Full run (about 11 minutes):

    .venv/bin/python bench/soak.py --output soak.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.metrics_scrape import Scrape, scrape_async
from bench.scripted_caller import CallerError, EncodedLine, ScriptedCaller
from bench.server_stacks import stack_server
from bench.spoken_lines import ENGINES, synthesise
from bench.stats_table import fmt, machine_line, table

LINES = ("Tell me a long story please.", "Stop and tell me another one.", "Go on and tell me a story.")
"""Without commas: a pause inside a line would end the turn early and the rest would barge in."""
STORY_TEXT = "tell me a long story"
RSS_GROWTH_TARGET = 5.0
SETTLE_SECONDS = 4.0
"""Waited after the resume grace: the server gives its C heap's free pages back to the OS after 2 s
without a session (voxgate.memory_care.HeapTrimmer), the state a leak check must compare."""
REPORT_TIMEOUT_SECONDS = 60.0


@dataclass
class Sample:
    at: float
    rss_mb: float
    fds: float
    tasks: float
    threads: float
    active: float
    heap_in_use_mb: float


@dataclass
class SoakCounts:
    cycles: int = 0
    turns: int = 0
    barge_ins: int = 0
    barge_ins_effective: int = 0
    ended: int = 0
    dropped: int = 0
    answers_cut: int = 0
    problems: list[str] = field(default_factory=list)


def idle_snapshot(scraped: Scrape) -> dict[str, float]:
    return {
        "asyncio tasks": scraped.value("voxgate_asyncio_tasks") or 0,
        "threads": scraped.value("voxgate_threads") or 0,
        "open file descriptors": scraped.value("process_open_fds") or 0,
        "active sessions": scraped.value("voxgate_sessions_active") or 0,
        "RSS MB": (scraped.value("process_resident_memory_bytes") or 0) / 1e6,
        "C heap in use MB": (scraped.value("voxgate_native_heap_bytes", state="in_use") or 0) / 1e6,
        "C heap free MB": (scraped.value("voxgate_native_heap_bytes", state="free") or 0) / 1e6,
    }


def sample_of(scraped: Scrape, at: float) -> Sample:
    snapshot = idle_snapshot(scraped)
    return Sample(
        at,
        snapshot["RSS MB"],
        snapshot["open file descriptors"],
        snapshot["asyncio tasks"],
        snapshot["threads"],
        snapshot["active sessions"],
        snapshot["C heap in use MB"],
    )


async def cycle(
    ws_url: str, api_key: str, lines: list[EncodedLine], rng: random.Random, counts: SoakCounts, *,
    drop: bool, reply_timeout: float,
) -> None:  # fmt: skip
    caller = ScriptedCaller(ws_url, api_key, {"system_prompt": "You tell stories."})
    try:
        await caller.open()
        first = caller.say(rng.choice(lines))
        await caller.wait_reply(first, done=False, within=reply_timeout)
        await caller.wait_audio(within=reply_timeout)
        await caller.pause(rng.uniform(0.3, 1.0))
        second = caller.say(rng.choice(lines))
        counts.barge_ins += 1
        answer = await caller.wait_reply(second, within=reply_timeout)
        counts.turns += 2
        story = await caller.wait_reply(first, within=reply_timeout)
        if story.status == "interrupted":
            counts.barge_ins_effective += 1
        else:
            counts.problems.append(f"a barge-in did not interrupt the story (status {story.status})")
        if answer.status != "completed":
            counts.answers_cut += 1  # the caller's line was split by a pause and its rest barged in
    except (CallerError, OSError) as exc:
        counts.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        summary = await (caller.drop() if drop else caller.end())
    counts.cycles += 1
    counts.problems += [f"{e.get('type')} {e.get('code')}: {e.get('message')}" for e in summary.errors]
    if drop:
        counts.dropped += 1
    else:
        counts.ended += 1
        if not summary.audio_accounted:
            counts.problems.append(
                f"sent {summary.sent_audio_seconds:.3f} s of audio, the server counted "
                f"{summary.server_audio_seconds}"
            )


async def worker(
    index: int, ws_url: str, api_key: str, lines: list[EncodedLine], stop_at: float, counts: SoakCounts,
    reply_timeout: float,
) -> None:  # fmt: skip
    rng = random.Random(index)
    await asyncio.sleep(rng.uniform(0, 2.0))  # do not start in lockstep
    while time.monotonic() < stop_at:
        await cycle(
            ws_url, api_key, lines, rng, counts, drop=rng.random() < 0.25, reply_timeout=reply_timeout
        )
        await asyncio.sleep(rng.uniform(0, 0.5))


async def sampler(
    base_url: str, http: httpx.AsyncClient, every: float, started: float, out: list[Sample]
) -> None:
    while True:
        out.append(sample_of(await scrape_async(base_url, http), time.monotonic() - started))
        await asyncio.sleep(every)


async def wait_idle(base_url: str, http: httpx.AsyncClient, within: float) -> Scrape:
    """The server once no session is active (dropped sessions may still be finishing), or after ``within``."""
    deadline = time.monotonic() + within
    while True:
        scraped = await scrape_async(base_url, http)
        if (scraped.value("voxgate_sessions_active") or 0) == 0 or time.monotonic() > deadline:
            return scraped
        await asyncio.sleep(0.5)  # polling: the server has no "idle" event to await


def errors_total(scraped: Scrape) -> float:
    return scraped.total("voxgate_session_errors_total")  # failed replies are session.error internal_error


def loaded_rss(samples: list[Sample], sessions: int) -> tuple[float | None, float | None]:
    """Median RSS of the first and of the last 3 samples taken while most sessions were connected."""
    loaded = [s.rss_mb for s in samples if s.active >= max(1, sessions // 2)]
    if len(loaded) < 2:
        return None, None
    window = max(1, min(3, len(loaded) // 2))
    return statistics.median(loaded[:window]), statistics.median(loaded[-window:])


async def run_phase(
    ws_url: str, api_key: str, lines: list[EncodedLine], args: argparse.Namespace, seconds: float,
    counts: SoakCounts, seed: int,
) -> float:  # fmt: skip
    """Every worker loops for ``seconds`` (a started cycle finishes); returns the time taken."""
    if seconds <= 0:
        return 0.0
    started = time.monotonic()
    stop_at = started + seconds
    await asyncio.gather(
        *(
            worker(seed + i, ws_url, api_key, lines, stop_at, counts, args.reply_timeout)
            for i in range(args.sessions)
        )
    )
    return time.monotonic() - started


async def settle(base_url: str, http: httpx.AsyncClient, args: argparse.Namespace) -> Scrape:
    """The idle server, once the dropped sessions' resume grace periods have run out."""
    await asyncio.sleep(args.resume_grace + SETTLE_SECONDS)
    return await wait_idle(base_url, http, 30)


async def soak(args: argparse.Namespace, lines: list[EncodedLine]) -> str:
    debug: dict[str, str] = {}
    if args.memory_dumps is not None:
        debug["VOXGATE_DEBUG_MEMORY_DIR"] = str(args.memory_dumps.resolve())
        if args.tracemalloc:
            debug["PYTHONTRACEMALLOC"] = str(args.tracemalloc)
    with tempfile.TemporaryDirectory() as tmp:
        server = stack_server(
            "instant",
            Path(tmp),
            VOXGATE_TEST_STT_TEXT=STORY_TEXT,
            VOXGATE_RESUME_GRACE_SECONDS=str(args.resume_grace),
            **debug,
        ).start()

        async def memory_report() -> dict[str, Any] | None:
            if args.memory_dumps is None or server.process is None:
                return None
            return await request_memory_report(server.process.pid, args.memory_dumps)

        try:
            async with httpx.AsyncClient(timeout=30.0) as http:
                return await _soak(
                    server.base_url, server.ws_url, server.api_key, http, args, lines, server.log_text,
                    memory_report,
                )  # fmt: skip
        finally:
            server.stop()


def _reports(directory: Path) -> set[Path]:
    return set(directory.glob("memory-*.json"))


async def request_memory_report(pid: int, directory: Path) -> dict[str, Any]:
    """Signal the server (SIGUSR2, ``VOXGATE_DEBUG_MEMORY_DIR``) and read the report it writes."""
    known = _reports(directory)
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + REPORT_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if new := sorted(_reports(directory) - known):
            return json.loads(new[0].read_text())  # type: ignore[no-any-return]
        await asyncio.sleep(0.2)  # polling: the report is a file the server process writes
    raise RuntimeError(f"the server wrote no memory report to {directory} within {REPORT_TIMEOUT_SECONDS} s")


def memory_report_section(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The differences between two memory reports, as Markdown lines."""

    def mb(value: float | None) -> str:
        return fmt(None if value is None else value / 1e6, 1)

    rows = []
    for key in ("Rss", "Anonymous"):
        first, last = before["smaps_rollup_kb"].get(key), after["smaps_rollup_kb"].get(key)
        if first is not None and last is not None:
            rows.append(
                [f"{key} (smaps_rollup) MB", mb(first * 1024), mb(last * 1024), mb((last - first) * 1024)]
            )
    if before["native_heap"] and after["native_heap"]:
        for key in ("in_use", "free"):
            first, last = before["native_heap"][key], after["native_heap"][key]
            rows.append([f"C heap {key} MB", mb(first), mb(last), mb(last - first)])
    objects_before, objects_after = before["python_objects"], after["python_objects"]
    grown = sorted(
        ((objects_after.get(name, 0) - objects_before.get(name, 0), name) for name in objects_after),
        reverse=True,
    )
    rows += [[f"live `{name}`", str(objects_before.get(name, 0)), str(objects_after[name]), f"+{delta}"]
             for delta, name in grown[:12] if delta > 0]  # fmt: skip
    out = ["Memory reports (`--memory-dumps`), idle after warm-up -> idle after soak:", "",
           table(["", "after warm-up", "after soak", "delta"], rows), ""]  # fmt: skip
    if before.get("tracemalloc") and after.get("tracemalloc"):
        import tracemalloc

        first, last = (tracemalloc.Snapshot.load(r["tracemalloc"]) for r in (before, after))
        diffs = last.compare_to(first, "lineno")[:12]
        out += ["Largest tracemalloc differences (Python-visible allocations):", "",
                table(["allocated at", "KB delta", "blocks delta"],
                      [[str(d.traceback[0]), fmt(d.size_diff / 1e3, 1), str(d.count_diff)] for d in diffs]),
                ""]  # fmt: skip
    return out


LEAK_MEASURES = ("asyncio tasks", "threads", "open file descriptors")


async def _soak(
    base_url: str, ws_url: str, api_key: str, http: httpx.AsyncClient, args: argparse.Namespace,
    lines: list[EncodedLine], log_text: Callable[[], str],
    memory_report: Callable[[], Awaitable[dict[str, Any] | None]],
) -> str:  # fmt: skip
    # Warm-up under the same load, so that whatever is sized by concurrency (the database connection pool
    # and its threads, allocator arenas) reaches its working size before the baseline is taken.
    warm = SoakCounts()
    await run_phase(ws_url, api_key, lines, args, args.warmup, warm, seed=1000)
    idle_before = await settle(base_url, http, args)
    report_before = await memory_report()  # after the scrape: a report disturbs the heap it describes
    counts = SoakCounts(problems=[f"warm-up: {p}" for p in warm.problems])
    samples: list[Sample] = []
    started = time.monotonic()
    watch = asyncio.create_task(sampler(base_url, http, args.sample_every, started, samples))
    elapsed = await run_phase(ws_url, api_key, lines, args, args.duration, counts, seed=0)
    watch.cancel()
    await asyncio.gather(watch, return_exceptions=True)
    idle_after = await settle(base_url, http, args)
    report_after = await memory_report()
    server_errors = errors_total(idle_after) - errors_total(idle_before)
    tracebacks = log_text().count("Traceback")
    before, after = idle_snapshot(idle_before), idle_snapshot(idle_after)
    growth = (after["RSS MB"] - before["RSS MB"]) / before["RSS MB"] * 100 if before["RSS MB"] else None
    loaded_start, loaded_end = loaded_rss(samples, args.sessions)

    leak_rows = [
        [name, *(fmt(value, 1 if name.endswith("MB") else 0)
                 for value in (before[name], after[name], after[name] - before[name]))]
        for name in (*LEAK_MEASURES, "active sessions", "RSS MB", "C heap in use MB", "C heap free MB")
    ]  # fmt: skip
    verdicts = [
        ("no client-visible error, every barge-in effective", not counts.problems),
        ("no server error counted, no traceback in the log", server_errors == 0 and tracebacks == 0),
        (f"idle RSS growth < {RSS_GROWTH_TARGET:.0f} %", growth is not None and growth < RSS_GROWTH_TARGET),
        ("no leaked task, thread or file descriptor", all(after[m] <= before[m] for m in LEAK_MEASURES)),
        ("no session left active", after["active sessions"] == 0),
    ]
    stride = max(1, len(samples) // 12)
    sample_rows = [
        [
            f"{s.at:.0f}",
            fmt(s.rss_mb, 1),
            fmt(s.heap_in_use_mb, 1),
            fmt(s.fds, 0),
            fmt(s.tasks, 0),
            fmt(s.threads, 0),
            fmt(s.active, 0),
        ]
        for s in samples[::stride]
    ]
    measures = [
        ["measured soak (s)", f"{elapsed:.0f}, after {args.warmup:.0f} s of warm-up under the same load"],
        ["concurrent sessions", str(args.sessions)],
        ["cycles (connect … disconnect)",
         f"{counts.cycles} ({counts.ended} ended, {counts.dropped} dropped)"],
        ["turns", str(counts.turns)],
        ["barge-ins that interrupted", f"{counts.barge_ins_effective} of {counts.barge_ins}"],
        ["answers after a barge-in cut by the caller again", str(counts.answers_cut)],
        ["client-visible problems", str(len(counts.problems))],
        ["server error events (delta)", fmt(server_errors, 0)],
        ["tracebacks in the server log", str(tracebacks)],
        ["idle RSS after warm-up -> after soak (MB)",
         f"{fmt(before['RSS MB'], 1)} -> {fmt(after['RSS MB'], 1)}"],
        ["idle RSS growth", f"{fmt(growth, 2)} %"],
        ["RSS under load, start -> end (MB)", f"{fmt(loaded_start, 1)} -> {fmt(loaded_end, 1)}"],
    ]  # fmt: skip
    out = [
        "### Soak",
        "",
        table(["measure", "value"], measures),
        "",
        "Idle server after warm-up and after the soak (leak check):",
        "",
        table(["", "after warm-up", "after soak", "delta"], leak_rows),
        "",
        "Samples during the soak:",
        "",
        table(
            [
                "t (s)",
                "RSS MB",
                "C heap in use MB",
                "open fds",
                "asyncio tasks",
                "threads",
                "active sessions",
            ],
            sample_rows,
        ),
        "",
        *(memory_report_section(report_before, report_after) if report_before and report_after else []),
        *[f"- {'PASS' if ok else '**FAIL**'}: {what}" for what, ok in verdicts],
        *[f"- problem: {p}" for p in counts.problems[:10]],
    ]
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=10, help="concurrent workers (default 10)")
    parser.add_argument("--duration", type=float, default=600.0, help="measured seconds (default 600)")
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds of the same load before the baseline (default 60)"
    )
    parser.add_argument(
        "--sample-every", type=float, default=10.0, help="metrics sampling period (default 10)"
    )
    parser.add_argument("--resume-grace", type=float, default=2.0, help="server resume grace, s (default 2)")
    parser.add_argument("--reply-timeout", type=float, default=30.0, help="per answer, s (default 30)")
    parser.add_argument("--speech", choices=ENGINES, default="espeak", help="caller voice (default espeak)")
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    parser.add_argument(
        "--memory-dumps", type=Path, metavar="DIR",
        help="diagnosis: the server writes a memory report (RSS, C heap, live objects by type) into DIR at "
        "both idle points and the differences are reported (VOXGATE_DEBUG_MEMORY_DIR, SIGUSR2)",
    )  # fmt: skip
    parser.add_argument(
        "--tracemalloc", type=int, default=0, metavar="FRAMES",
        help="with --memory-dumps: run the server under tracemalloc (PYTHONTRACEMALLOC=FRAMES) and report "
        "the largest allocation differences; slows the server a lot, use fewer --sessions",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 200:
        parser.error("--sessions must be between 1 and 200")
    if not 10 <= args.duration <= 7200:
        parser.error("--duration must be between 10 and 7200 seconds")
    if not 0 <= args.warmup <= 3600:
        parser.error("--warmup must be between 0 and 3600 seconds")
    if not 1 <= args.sample_every <= 60:
        parser.error("--sample-every must be between 1 and 60 seconds")
    if args.tracemalloc and args.memory_dumps is None:
        parser.error("--tracemalloc needs --memory-dumps")
    if not 0 <= args.tracemalloc <= 100:
        parser.error("--tracemalloc must be between 0 and 100 frames")
    return args


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = argv if argv is not None else sys.argv[1:]
    spoken = synthesise(list(LINES), args.speech)
    lines = [EncodedLine.of(line.text, line.pcm) for line in spoken]
    header = "\n".join(
        [
            "## Soak (bench/soak.py)",
            "",
            f"Machine: {machine_line()}",
            f"Command: `.venv/bin/python bench/soak.py {shlex.join(command)}`",
            "",
        ]
    )
    text = header + "\n" + await soak(args, lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    asyncio.run(main())
