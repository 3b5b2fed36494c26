"""The phone path end to end, with the speech doubles (no model time): a simulated Twilio peer calls a real
voxgate server process over loopback, as in tests/twilio.

Per call it measures:

1. Answer latency: from the end of the caller's speech (the last 20 ms frame of the utterance sent) to
   the first agent ``media`` frame received. This includes the turn-taking silence (the doubles' end-of-turn
   model says "complete" at the 250 ms quick pause), the bridge both ways and the engine.
2. Barge-in latency: from the first frame of interrupting speech to the ``clear`` received. This includes
   the barge-in rule (400 ms of voiced speech plus the back-channel check).

Run: ``.venv/bin/python bench/twilio_bridge.py [--calls 10]``. Prints percentiles. Each call takes about
8 s of real time (the peer streams at real-time pace).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.doubles import MS_PER_WORD
from tests.live_server import LiveServer
from tests.twilio.conftest import PCMU, PhoneServer, phone_env, phrase_audio
from tests.twilio.twilio_peer import SimulatedTwilio


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=20, method="inclusive") if len(ordered) > 1 else ordered * 19
    return f"p50 {cuts[9]:7.1f} ms  p95 {cuts[18]:7.1f} ms  max {ordered[-1]:7.1f} ms  (n={len(ordered)})"


async def one_call(phone: PhoneServer, agent_id: str) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    url, parameters = phone.answer(agent_id)
    peer = await SimulatedTwilio.dial(url)
    try:
        await peer.start(parameters)
        await peer.say(phrase_audio("hello there"))
        spoke_at = loop.time()
        await peer.wait_until(lambda: peer.received_ms > 0)
        answer_ms = (loop.time() - spoke_at) * 1000
        await peer.wait_until(lambda: peer.played_ms >= 4 * MS_PER_WORD - 1)
        await peer.say(phrase_audio("tell me a long story"))
        await peer.wait_until(lambda: peer.played_ms >= 4 * MS_PER_WORD + 1000)
        interrupting = peer.say(phrase_audio("wait stop I have another question", speech_ms=1400))
        barge_at = loop.time()
        await peer.wait_until(lambda: bool(peer.clears))
        barge_ms = (loop.time() - barge_at) * 1000
        await interrupting
        await peer.stop()
        await peer.closed.wait()
        return answer_ms, barge_ms
    finally:
        await peer.close()


async def main(calls: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        record = Path(directory) / "llm-record.jsonl"
        with LiveServer(Path(directory), env=phone_env(record)) as server:
            phone = PhoneServer(server, record)
            agent_id = phone.create_agent(input=PCMU, output=PCMU)
            answers: list[float] = []
            barge_ins: list[float] = []
            for _ in range(calls):
                answer_ms, barge_ms = await one_call(phone, agent_id)
                answers.append(answer_ms)
                barge_ins.append(barge_ms)
    print(f"end of caller speech -> first agent media : {percentiles(answers)}")
    print(f"start of interrupting speech -> clear     : {percentiles(barge_ins)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=10)
    asyncio.run(main(parser.parse_args().calls))
