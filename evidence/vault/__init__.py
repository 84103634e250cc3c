"""The storage vault: one interface, a local-folder and an S3 backend chosen by one URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from evidence.vault.base import (
    ORIGINALS,
    KeyRefused,
    ObjectExists,
    ObjectInfo,
    SealNotConfirmed,
    StillRetained,
    Vault,
    VaultError,
    VaultNotReady,
    VaultUnavailable,
    check_key,
)

__all__ = [
    "ORIGINALS",
    "KeyRefused",
    "ObjectExists",
    "ObjectInfo",
    "SealNotConfirmed",
    "StillRetained",
    "Vault",
    "VaultError",
    "VaultNotReady",
    "VaultUnavailable",
    "check_key",
    "open_vault",
]


class BadStorageUrl(VaultError):
    status, exit_code = 500, 2


def open_vault(
    url: str,
    *,
    retention_days: int,
    access_key: str | None,
    secret_key: str | None,
    tmp_dir: Path,
    part_size: int | None = None,
) -> Vault:
    """``file:///absolute/path`` or ``s3://bucket?endpoint_url=http://...&region=eu-west-2``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise BadStorageUrl(f"a file storage URL names no host: {url}")
        root = Path(unquote(parts.path))
        if not root.is_absolute():
            raise BadStorageUrl(f"a file storage URL names an absolute folder, file:///path: {url}")
        from evidence.vault.local import LocalVault

        return LocalVault(root)
    if parts.scheme == "s3":
        if not parts.netloc or parts.path not in ("", "/"):
            raise BadStorageUrl(f"an s3 storage URL is s3://BUCKET?endpoint_url=...&region=...: {url}")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint_url", "region"}
        if unknown:
            raise BadStorageUrl(f"unknown option(s) in the storage URL: {', '.join(sorted(unknown))}")
        from evidence.vault.s3 import S3Vault, make_client

        endpoint = query.get("endpoint_url")
        client = make_client(
            endpoint_url=endpoint, region=query.get("region"), access_key=access_key, secret_key=secret_key
        )
        return S3Vault(
            client, parts.netloc, retention_days=retention_days, tmp_dir=tmp_dir,
            part_size=part_size, endpoint_url=endpoint,
        )
    raise BadStorageUrl(f"storage URL must start with file:// or s3://: {url}")
