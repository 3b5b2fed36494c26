"""Encryption at rest for write-only secrets (HTTP-tool header values, BYO-LLM api keys).

The key comes from ``settings.secret_key`` (a Fernet key, or any passphrase, which is stretched with
SHA-256), else from ``<data_dir>/secret.key``, generated once with mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

SECRET_KEY_FILE = "secret.key"


class SecretDecryptionError(RuntimeError):
    """A stored secret cannot be decrypted (the secret key changed)."""


class SecretBox:
    """Encrypts and decrypts short strings with Fernet (AES-128-CBC + HMAC-SHA256)."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (e.g. signing), derived from the secret key: the same on every
        instance that shares the secret key, and unrelated to the encryption key itself."""
        return hmac.new(self._key, f"voxgate:{purpose}".encode(), hashlib.sha256).digest()

    @classmethod
    def from_settings(cls, secret_key: str | None, data_dir: Path) -> SecretBox:
        if secret_key:
            return cls(_fernet_key_from_text(secret_key))
        return cls(_load_or_create_key_file(data_dir / SECRET_KEY_FILE))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise SecretDecryptionError(
                "stored secret cannot be decrypted with the current secret key"
            ) from exc


def _fernet_key_from_text(text: str) -> bytes:
    raw = text.strip().encode("utf-8")
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except ValueError:
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def _load_or_create_key_file(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # Write a private temp file, then link it into place: atomic, and the first process wins.
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    try:
        os.link(temp, path)
    except FileExistsError:
        key = path.read_bytes().strip()
    finally:
        temp.unlink(missing_ok=True)
    return key
