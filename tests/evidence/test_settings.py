"""The one settings object: every value from an EVIDENCE_* variable or an argument, checked
when the server starts rather than when the value is first used."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from evidence.settings import Settings


def test_the_embedded_defaults_live_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    data = (tmp_path / "var").resolve()
    assert settings.effective_database_url == f"sqlite:///{data / 'evidence.db'}"
    assert settings.effective_storage_url == (data / "vault").as_uri()
    assert settings.effective_broker_url == f"sqla+sqlite:///{data / 'broker.db'}"
    assert settings.effective_tmp_dir == data / "tmp"
    assert settings.effective_public_url == "http://127.0.0.1:8000"
    assert not settings.is_postgres


def test_environment_variables_set_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVIDENCE_MAX_CONCAT_PARTIALS", "5")
    monkeypatch.setenv("EVIDENCE_DATABASE_URL", "postgresql://evidence@db/evidence")
    monkeypatch.setenv("EVIDENCE_PUBLIC_URL", "https://evidence.force.police.uk/")
    settings = Settings()
    assert settings.max_concat_partials == 5 and settings.is_postgres
    assert settings.effective_public_url == "https://evidence.force.police.uk"


def test_a_misspelt_or_unsafe_value_stops_the_start() -> None:
    with pytest.raises(ValidationError):
        Settings(max_concat_partal=5)  # type: ignore[call-arg]  # misspelt on purpose
    with pytest.raises(ValidationError, match="unknown hash algorithm"):
        Settings(extra_hashes="md5,crc32")
    for algorithms in ("HS256", "none", "RS256,HS512", ""):
        with pytest.raises(ValidationError, match="not allowed for OIDC tokens"):
            Settings(oidc_algorithms=algorithms)
    with pytest.raises(ValidationError):
        Settings(max_header_count=1)  # too few for any real client


def test_hash_algorithms_always_start_with_sha256_once() -> None:
    assert Settings().hash_algorithms == ("sha256",)
    assert Settings(extra_hashes="SHA1, md5,sha256").hash_algorithms == ("sha256", "sha1", "md5")
    assert Settings(oidc_algorithms="ES256, RS256").oidc_algorithm_list == ("ES256", "RS256")
