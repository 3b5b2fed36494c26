"""Start a REAL voxgate server process on a free loopback port, for tests.

    server = LiveServer(data_dir=tmp_path, env={"VOXGATE_LLM": "tests.doubles:make_llm"}).start()
    httpx.get(f"{server.base_url}/v1/agents", headers=server.auth_headers())
    server.restart()            # same data dir (and port when still free)
    server.stop()

The process is ``python -m voxgate serve`` with a clean environment: every inherited ``VOXGATE_*``
variable is dropped, then ``VOXGATE_DATA_DIR``, ``VOXGATE_API_KEY`` (a known bootstrap key),
``VOXGATE_PRELOAD_MODELS=false`` and the caller's ``env`` overrides are set. It runs in ``data_dir`` (so
no stray ``.env`` is read) and logs to ``data_dir/server.log``. ``start()`` returns once ``/healthz``
answers 200, or raises with the log tail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from voxgate.config import Settings
from voxgate.store import Store

STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
HEALTH_POLL_SECONDS = 0.05
PORT_ATTEMPTS = 5


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerStartError(RuntimeError):
    pass


class LiveServer:
    def __init__(
        self,
        data_dir: Path,
        *,
        api_key: str | None = None,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.api_key = api_key if api_key is not None else "vg_test_" + secrets.token_urlsafe(24)
        self.env: dict[str, str] = dict(env or {})
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "server.log"

    # --- addresses and clients --------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._require_port()}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self._require_port()}/v1/ws"

    def auth_headers(self, key: str | None = None, *, bearer: bool = True) -> dict[str, str]:
        value = key if key is not None else self.api_key
        return {"Authorization": f"Bearer {value}" if bearer else value}

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("headers", self.auth_headers())
        return httpx.Client(base_url=self.base_url, timeout=30.0, **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("headers", self.auth_headers())
        return httpx.AsyncClient(base_url=self.base_url, timeout=30.0, **kwargs)

    # --- life cycle -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def process_env(self) -> dict[str, str]:
        """The environment the server process gets (see the module docstring)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXGATE_")}
        env.update(
            {
                "VOXGATE_DATA_DIR": str(self.data_dir),
                "VOXGATE_API_KEY": self.api_key,
                "VOXGATE_PRELOAD_MODELS": "false",
                "VOXGATE_HOST": self.host,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.env)
        inherited = os.environ.get("PYTHONPATH")
        if "PYTHONPATH" in self.env and inherited:
            # The caller's path after the override: a checkout run with PYTHONPATH=src serves its own code.
            env["PYTHONPATH"] = os.pathsep.join((self.env["PYTHONPATH"], inherited))
        return env

    def start(self) -> LiveServer:
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        last_error: ServerStartError | None = None
        for attempt in range(PORT_ATTEMPTS):
            if self.port is None or attempt > 0:
                self.port = free_port(self.host)
            try:
                self._spawn_and_wait()
                return self
            except ServerStartError as exc:
                last_error = exc
                if "address already in use" not in str(exc).lower():
                    raise
        assert last_error is not None
        raise last_error

    def stop(self) -> int | None:
        """Stop the process (SIGTERM, then SIGKILL after a timeout); returns its exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def restart(self, env: dict[str, str] | None = None) -> LiveServer:
        """Stop, optionally change env overrides, and start again on the same data dir."""
        self.stop()
        if env is not None:
            self.env.update(env)
        return self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- running the CLI against the same data ---------------------------------------------------
    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``python -m voxgate <args>`` with the server's environment (same database)."""
        return subprocess.run(
            [sys.executable, "-m", "voxgate", *args],
            cwd=self.data_dir,
            env=self.process_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def create_api_key(self, project: str | None = None) -> str:
        """A new API key in ``project`` (default: a new project of its own), written straight into the
        server's database (works whether or not the server is running)."""
        name = project if project is not None else "test-" + secrets.token_hex(6)
        env = self.process_env()
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=self.data_dir,
            database_url=env.get("VOXGATE_DATABASE_URL") or None,
            secret_key=env.get("VOXGATE_SECRET_KEY") or None,
        )

        async def create() -> str:
            store = await Store.open(settings)
            try:
                raw_key, _ = await store.keys.create(name, label="test")
                return raw_key
            finally:
                await store.close()

        # In a thread of its own, so this works from sync code and from inside a running event loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, create()).result()

    # --- internals --------------------------------------------------------------------------------
    def _require_port(self) -> int:
        if self.port is None:
            raise RuntimeError("server not started")
        return self.port

    def _spawn_and_wait(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"\n--- starting on {self.host}:{self.port} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "voxgate", "serve", "--host", self.host, "--port", str(self.port)],
                cwd=self.data_dir,
                env=self.process_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://{self.host}:{self.port}/healthz"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    code = self.process.returncode
                    self.process = None
                    raise ServerStartError(f"voxgate exited with {code} during start-up:\n{self._log_tail()}")
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(HEALTH_POLL_SECONDS)  # polling readiness: there is no event to await
        self.stop()
        raise ServerStartError(
            f"voxgate did not answer /healthz in {self.startup_timeout}s:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
