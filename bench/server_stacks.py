"""The server configurations the realtime benchmarks compare, and a way to start one on loopback.

- ``instant``: the real Silero VAD (the input path a real deployment runs) with instant deterministic
  doubles for everything that is model time: an STT that hears a fixed sentence in any speech, an
  end-of-turn model that always says "complete", a scripted LLM, a TTS that makes 100 ms of tone per
  word. What remains is the server's own overhead.
- ``embedded``: the default offline stack (Silero, Whisper tiny.en, smart-turn, Qwen2.5-0.5B via
  llama.cpp, Piper joe), models preloaded before the benchmark starts.

The doubles live in ``tests/doubles.py`` and are injected through ``VOXGATE_*`` settings, as the tests do.
"""

from __future__ import annotations

from pathlib import Path

from tests.live_server import SERVER_PYTHONPATH, LiveServer

from voxgate.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]

STACKS: dict[str, dict[str, str]] = {
    "instant": {
        "VOXGATE_VAD": "silero",
        "VOXGATE_STT": "tests.doubles:fixed_text_stt",
        "VOXGATE_TURN_DETECTOR": "tests.doubles:fixed_turn_detector",
        "VOXGATE_LLM": "tests.doubles:scripted_llm",
        "VOXGATE_TTS": "tests.doubles:tone_tts",
        "VOXGATE_TEST_TURN_PROBABILITY": "0.99",
    },
    "embedded": {},
}
STARTUP_SECONDS = {"instant": 60.0, "embedded": 300.0}


def stack_server(stack: str, data_dir: Path, **extra_env: str) -> LiveServer:
    """A (not yet started) server on a free loopback port running ``stack``, models preloaded."""
    if stack not in STACKS:
        raise ValueError(f"unknown stack {stack!r}; choose one of {', '.join(STACKS)}")
    env = {
        "PYTHONPATH": SERVER_PYTHONPATH,  # the checked-out sources, not an installed copy
        "VOXGATE_PRELOAD_MODELS": "true",
        "VOXGATE_MODEL_CACHE_DIR": str(Settings().effective_model_cache_dir),
        **STACKS[stack],
        **extra_env,
    }
    return LiveServer(data_dir, env=env, startup_timeout=STARTUP_SECONDS[stack])
