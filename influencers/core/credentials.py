"""Account passwords encrypted at rest with Fernet (AES-128-CBC + HMAC, from `cryptography`).

The key comes from INFLUENCERS_SECRET_KEY, or from a key file created on first use with mode
0600 so a fresh machine works without a manual step. The plaintext exists only in memory, in
the login request to the platform.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from influencers.core.config import Config
from influencers.core.errors import ConfigError, SecretKeyError


class CredentialCipher:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                "INFLUENCERS_SECRET_KEY",
                "is not a Fernet key (32 url-safe base64 bytes; make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)",
            ) from None

    def __repr__(self) -> str:
        return "CredentialCipher(<key hidden>)"

    @classmethod
    def from_config(cls, config: Config, *, create: bool = True) -> CredentialCipher:
        if config.secret_key:
            return cls(config.secret_key.encode("ascii", "replace"))
        return cls(load_or_create_key_file(config.key_file, create=create))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise SecretKeyError() from None


def load_or_create_key_file(path: Path, *, create: bool = True) -> bytes:
    """Read the key file, or create it with mode 0600 (never group/world readable)."""
    if path.exists():
        return path.read_bytes().strip()
    if not create:
        raise ConfigError("INFLUENCERS_SECRET_KEY", f"not set and no key file at {path}")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Fernet.generate_key()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, path)  # atomic and refuses to overwrite: a racing process keeps its key
    except FileExistsError:
        key = path.read_bytes().strip()
    finally:
        temporary.unlink()
    return key
