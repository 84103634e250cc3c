"""Reading stored objects back for a fixity audit (evidence.fixity): what is there now under a
key, and the write-once protection it has.

Narrower than :class:`~evidence.vault.base.Vault`: read, stat and protection, nothing that
writes. The local vault's files are read directly, through the vault's own key checks (a key
that is not one of ours, or that leads outside the vault's folder, is refused before anything
is opened). An S3 vault is read through a second, independent client library
(:mod:`evidence.vault.fixity_s3`, the ``minio`` SDK), not the boto3 client that wrote it: two
implementations then agree on what is in the bucket, so one SDK's bug cannot hide what the
other would see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol

from evidence.vault.base import KeyRefused, Vault, VaultError, VaultUnavailable
from evidence.vault.local import LocalVault


class Missing(VaultError):
    """Nothing is stored under the key now (deleted, or hidden behind a delete marker)."""

    status, exit_code = 404, 3


class Unreadable(VaultError):
    """The object is there but the storage refuses to give its bytes (the reason says why)."""

    status, exit_code = 500, 1


@dataclass(frozen=True)
class Opened:
    stream: BinaryIO
    size: int
    # The version read (S3): protection is asked of that version, not of whatever is latest by then.
    version: str | None = None


@dataclass(frozen=True)
class Protection:
    """Write-once protection as found: ``mode`` is S3's Object Lock mode (``COMPLIANCE``,
    ``GOVERNANCE``) or None; for a local file ``read-only`` or ``writable``."""

    mode: str | None
    retain_until: datetime | None = None


class Readback(Protocol):
    # Names the reader for the record: "file system", or the client library and its version.
    client: str
    # Whether originals are protected by Object Lock retention (S3) or by file mode (local).
    retention: bool

    def open(self, key: str) -> Opened:
        """The object's current bytes. Missing when there is none; Unreadable when the storage
        refuses; VaultUnavailable when it cannot be reached. Close the stream when done."""

    def protection(self, key: str, version: str | None) -> Protection: ...

    def close(self) -> None: ...


class LocalReadback:
    client = "file system"
    retention = False

    def __init__(self, vault: LocalVault) -> None:
        self.vault = vault

    def open(self, key: str) -> Opened:
        try:
            info = self.vault.stat(key)  # checks the key, and that it stays inside the vault
            if info is None:
                raise Missing(f"nothing is stored under {key}")
            return Opened(self.vault.open(key), info.size)
        except KeyRefused:
            raise
        except KeyError:
            raise Missing(f"nothing is stored under {key}") from None
        except (IsADirectoryError, PermissionError) as error:
            raise Unreadable(f"cannot be read: {error.strerror}") from error

    def protection(self, key: str, version: str | None) -> Protection:
        info = self.vault.stat(key)  # sealed: no write bit for anyone, as LocalVault.seal leaves it
        if info is None:
            raise Missing(f"nothing is stored under {key}")
        return Protection("read-only" if info.sealed else "writable")

    def close(self) -> None:
        pass


def readback_for(vault: Vault, access_key: str | None, secret_key: str | None) -> Readback:
    """The reader for ``vault``'s backend."""
    if isinstance(vault, LocalVault):
        return LocalReadback(vault)
    from evidence.vault.s3 import S3Vault

    if isinstance(vault, S3Vault):
        from evidence.vault.fixity_s3 import MinioReadback

        return MinioReadback.for_vault(vault, access_key=access_key, secret_key=secret_key)
    raise VaultUnavailable(f"no fixity reader for a {type(vault).__name__}")
