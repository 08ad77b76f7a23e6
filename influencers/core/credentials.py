"""Account passwords encrypted at rest with Fernet (AES-128-CBC + HMAC, from `cryptography`).

The key comes from INFLUENCERS_SECRET_KEY, or from a key file created on first use with mode
0600 so a fresh machine works without a manual step (INFLUENCERS_KEY_FILE; by default
``$XDG_CONFIG_HOME/influencers/secret.key``, i.e. ``~/.config/influencers/secret.key``, never
relative to the working directory). Every problem with the key file is a `ConfigError` naming
it; a key file that group or others may read is used with a warning.

The same key encrypts each account's proxy URL (`influencers.core.identities`), which may
carry the proxy's own credentials.

One key per deployment: the table ``secret_key_check`` holds the key's check value (an
HMAC-SHA256 of a fixed text under the key, never the key). The first process that needs the key
records it (`check_key`); a process whose key differs refuses to add or decrypt passwords
(`KeyMismatch`, naming the variable or the file the key came from). The plaintext exists only
in memory, in the login request to the platform.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import socket
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from influencers.core.config import Config
from influencers.core.errors import ConfigError, InfluencersError, SecretKeyError

logger = logging.getLogger(__name__)

#: What the check value authenticates; a new text (v2) would mean a new kind of check value.
CHECK_TEXT = b"influencers: credential key check v1"
CHECK_PREFIX = "hmac-sha256:"
#: A key file is one line of 44 characters; anything much longer is not a key file.
MAX_KEY_FILE_BYTES = 4096
FERNET_HINT = ("make one with `python -c 'from cryptography.fernet import Fernet; "
               "print(Fernet.generate_key().decode())'`")
_warned_open_files: set[Path] = set()


@dataclass(frozen=True)
class KeySource:
    """Where a key came from, for messages: the variable to fix and, for a file, its path."""

    variable: str
    path: Path | None = None

    @property
    def what(self) -> str:
        return f"the key file {self.path}" if self.path is not None else "the key"


ENV_SOURCE = KeySource("INFLUENCERS_SECRET_KEY")


class KeyMismatch(ConfigError, SecretKeyError):
    """The credential key is not this deployment's key."""

    def __init__(self, source: KeySource, detail: str) -> None:
        super().__init__(source.variable, f"{source.what} is not this deployment's key ({detail}); use the key"
                                          " the accounts were added with")


class UnreadableSecret(InfluencersError):
    """A secret stored for one account cannot be decrypted with the deployment's key.

    The key is right (`KeyMismatch` says when it is not), so the account is unusable, not the
    process: a crawl takes it out of rotation with ``reason`` and goes on with the others.
    """

    account_id: int
    reason: str


class UnreadablePassword(UnreadableSecret):
    """An account's stored password cannot be decrypted with the deployment's key."""

    def __init__(self, account_id: int, username: str) -> None:
        self.account_id, self.username = account_id, username
        self.reason = ("its stored password cannot be decrypted with this deployment's key (it was stored with"
                       " another key): add the account again")
        super().__init__(f"account {username!r} (id {account_id}): {self.reason}")


class UnreadableProxy(UnreadableSecret):
    """An account's stored proxy URL cannot be decrypted with the deployment's key."""

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.reason = ("its stored proxy URL cannot be decrypted with this deployment's key (it was stored with"
                       " another key): set the proxy again (accounts set-proxy)")
        super().__init__(f"account id {account_id}: {self.reason}")


class CredentialCipher:
    def __init__(self, key: bytes, source: KeySource = ENV_SOURCE) -> None:
        self.source = source
        try:
            self._fernet = Fernet(key)
            raw = base64.urlsafe_b64decode(key)
        except (ValueError, TypeError):
            what = f"{source.what} does not hold" if source.path is not None else "is not"
            raise ConfigError(source.variable, f"{what} a Fernet key (32 url-safe base64 bytes; {FERNET_HINT})"
                              ) from None
        self.check_value = CHECK_PREFIX + hmac.new(raw, CHECK_TEXT, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "CredentialCipher(<key hidden>)"

    @classmethod
    def from_config(cls, config: Config, *, create: bool = True) -> CredentialCipher:
        if config.secret_key:
            return cls(config.secret_key.encode("ascii", "replace"))
        if config.key_file is None:
            raise ConfigError("INFLUENCERS_KEY_FILE", "not set, and there is no home directory for the default"
                                                      " key file (set INFLUENCERS_KEY_FILE or INFLUENCERS_SECRET_KEY)")
        return cls(load_or_create_key_file(config.key_file, create=create),
                   KeySource("INFLUENCERS_KEY_FILE", config.key_file))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise SecretKeyError() from None

    def can_decrypt(self, token: str) -> bool:
        try:
            self.decrypt(token)
        except SecretKeyError:
            return False
        return True


# -- the deployment's key: the secret_key_check table ----------------------------------------


def check_key(cursor: Any, cipher: CredentialCipher, stored_passwords: Sequence[str] | None) -> bool:
    """Refuse (`KeyMismatch`) a key whose check value differs from the deployment's; with none
    recorded yet, record this key's, inside the caller's transaction. True: the key is the
    deployment's; False: none is recorded and ``stored_passwords`` is None (compare only).

    ``stored_passwords`` are the passwords already stored: a deployment from before the check
    records only a key that decrypts at least half of them, so a key made by mistake for one
    account (a key file created in another directory) is never taken for the deployment's.
    """
    cursor.execute("SELECT check_value, recorded_by, recorded_at FROM secret_key_check WHERE id = 1")
    row = cursor.fetchone()
    if row is None and stored_passwords is None:
        return False
    if row is None:
        readable = sum(cipher.can_decrypt(token) for token in stored_passwords)
        if stored_passwords and readable * 2 < len(stored_passwords):
            raise KeyMismatch(cipher.source, f"it decrypts {readable} of the {len(stored_passwords)} stored"
                                             " passwords")
        recorded_by = f"{cipher.source.what} ({cipher.source.variable}) on {socket.gethostname()}"[:255]
        cursor.execute("INSERT IGNORE INTO secret_key_check (id, check_value, recorded_by) VALUES (1, %s, %s)",
                       (cipher.check_value, recorded_by))
        if cursor.rowcount == 1:
            logger.info("recorded %s as this deployment's credential key (its check value, not the key)",
                        cipher.source.what)
            return True
        # Another process recorded its key meanwhile: a locking read sees it.
        cursor.execute("SELECT check_value, recorded_by, recorded_at FROM secret_key_check WHERE id = 1 FOR UPDATE")
        row = cursor.fetchone()
    if not hmac.compare_digest(row["check_value"], cipher.check_value):
        raise KeyMismatch(cipher.source, f"the database holds the check value of {row['recorded_by']},"
                                         f" recorded {row['recorded_at']:%Y-%m-%d %H:%M} UTC")
    return True


# -- the key file -----------------------------------------------------------------------------


def load_or_create_key_file(path: Path, *, create: bool = True) -> bytes:
    """Read the key file, or create it with mode 0600 (never group/world readable). Every
    problem is a ConfigError naming INFLUENCERS_KEY_FILE and the path."""
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        if not create:
            raise ConfigError("INFLUENCERS_SECRET_KEY", f"not set and no key file at {path}") from None
    try:
        return _create_key_file(path)
    except OSError as exc:
        raise _file_error(path, "cannot create the key file", exc) from None


def _read_key_file(path: Path) -> bytes:
    try:
        # O_NONBLOCK: a FIFO put there must not hang the process; a directory opens, and is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _file_error(path, "cannot read the key file", exc) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError("INFLUENCERS_KEY_FILE", f"{path} is a directory, not a key file")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("INFLUENCERS_KEY_FILE", f"{path} is not a regular file")
        try:
            content = os.read(fd, MAX_KEY_FILE_BYTES + 1)
        except OSError as exc:
            raise _file_error(path, "cannot read the key file", exc) from None
    finally:
        os.close(fd)
    key = content.strip()
    if len(content) > MAX_KEY_FILE_BYTES:
        raise ConfigError("INFLUENCERS_KEY_FILE", f"the key file {path} does not hold a Fernet key (it is too long)")
    CredentialCipher(key, KeySource("INFLUENCERS_KEY_FILE", path))  # a bad key is the one line, not a warning too
    if info.st_mode & 0o077 and path not in _warned_open_files:
        _warned_open_files.add(path)
        logger.warning("INFLUENCERS_KEY_FILE: the key file %s is open to group/others (mode %04o): "
                       "`chmod 600` it", path, stat.S_IMODE(info.st_mode))
    return key


def _create_key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Fernet.generate_key()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # atomic and refuses to overwrite: a racing process keeps its key
        except FileExistsError:
            return _read_key_file(path)
    finally:
        temporary.unlink(missing_ok=True)
    logger.info("created the key file %s (mode 0600): back it up", path)
    return key


def _file_error(path: Path, doing: str, exc: OSError) -> ConfigError:
    return ConfigError("INFLUENCERS_KEY_FILE", f"{doing} {path}: {exc.strerror or type(exc).__name__}")
