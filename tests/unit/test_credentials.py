from __future__ import annotations

import stat

import pytest
from cryptography.fernet import Fernet

from influencers.core.config import Config
from influencers.core.credentials import CredentialCipher, load_or_create_key_file
from influencers.core.errors import ConfigError, SecretKeyError


def test_key_file_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "keys" / "secret.key"
    first = load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key_file(path) == first
    cipher = CredentialCipher.from_config(Config.from_env({"INFLUENCERS_KEY_FILE": str(path)}))
    assert cipher.decrypt(cipher.encrypt("密码 pw")) == "密码 pw"


def test_wrong_key_is_one_clear_error():
    token = CredentialCipher(Fernet.generate_key()).encrypt("hunter2")
    with pytest.raises(SecretKeyError) as error:
        CredentialCipher(Fernet.generate_key()).decrypt(token)
    assert "INFLUENCERS_SECRET_KEY" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_malformed_key_names_the_variable():
    with pytest.raises(ConfigError) as error:
        CredentialCipher.from_config(Config.from_env({"INFLUENCERS_SECRET_KEY": "not-a-key"}))
    assert str(error.value).startswith("INFLUENCERS_SECRET_KEY")


def test_cipher_repr_hides_key():
    key = Fernet.generate_key()
    assert key.decode() not in repr(CredentialCipher(key))
