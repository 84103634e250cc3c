"""One typed settings object. Every value comes from an ``EVIDENCE_*`` environment variable
or the CLI; the defaults run the embedded mode with nothing installed."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

GiB = 1024**3
TiB = 1024**4


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVIDENCE_", extra="forbid", frozen=True)

    data_dir: Path = Path("./var")
    # Empty means "inside the data dir": SQLite database, local vault.
    database_url: str = ""
    storage_url: str = ""
    broker_url: str = ""

    host: str = "127.0.0.1"
    port: int = 8000
    # The address users reach the server at, for links printed by the CLI.
    public_url: str = ""

    # Bearer tokens for officers, auditors and admins (issued by `evidence users add`).
    token_issuer: str = "evidence"
    token_audience: str = "evidence-api"
    token_ttl_days: int = Field(default=90, ge=1)
    # Where the HS256 token secret comes from; generated into the data dir when empty.
    token_secret_file: Path | None = None

    # Uploads
    max_upload_size: int = Field(default=1 * TiB, ge=1)
    upload_expiry_hours: float = Field(default=24 * 7, gt=0)
    cleanup_interval_seconds: float = Field(default=3600, gt=0)
    lock_timeout_seconds: float = Field(default=20, gt=0)
    s3_part_size: int = Field(default=16 * 1024 * 1024, ge=5 * 1024 * 1024)

    # Object storage credentials for an s3:// storage URL (else boto3's default chain).
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    retention_days: int = Field(default=7 * 365, ge=1)

    tmp_dir: Path | None = None

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'evidence.db'}"

    @property
    def effective_storage_url(self) -> str:
        return self.storage_url or (self.data_path / "vault").as_uri()

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.data_path / 'broker.db'}"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def effective_tmp_dir(self) -> Path:
        return self.tmp_dir or self.data_path / "tmp"

    @property
    def is_postgres(self) -> bool:
        return self.effective_database_url.startswith("postgresql")
