"""Builds the pieces every entry point needs (database, vault, token signer) from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from audit import NoteSigner, generate_signer
from evidence.access import Authenticator, TokenSigner
from evidence.db import Database
from evidence.keys import load_or_create_secret, load_or_create_text
from evidence.ledger import Keys
from evidence.oidc import OidcVerifier
from evidence.settings import Settings
from evidence.vault import Vault, open_vault


@dataclass
class Runtime:
    settings: Settings
    db: Database
    vault: Vault
    signer: TokenSigner
    ledger_keys: Keys
    # Who is asking: local tokens from `signer` and, when configured, the identity provider's.
    auth: Authenticator

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        data = settings.data_path
        data.mkdir(parents=True, exist_ok=True)
        settings.effective_tmp_dir.mkdir(parents=True, exist_ok=True)
        secret = load_or_create_secret(settings.token_secret_file or data / "keys" / "token.secret")
        signer = TokenSigner(
            secret, settings.token_issuer, settings.token_audience, timedelta(days=settings.token_ttl_days)
        )
        vault = open_vault(
            settings.effective_storage_url,
            retention_days=settings.retention_days,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            tmp_dir=settings.effective_tmp_dir,
            part_size=settings.s3_part_size,
        )
        skey = load_or_create_text(
            settings.ledger_key_file or data / "keys" / "ledger.skey",
            lambda: generate_signer(settings.ledger_origin).to_skey(),
        )
        keys = Keys(settings.ledger_origin, NoteSigner.from_skey(skey.strip()))
        auth = Authenticator(signer, OidcVerifier.from_settings(settings))
        return cls(settings, Database(settings.effective_database_url), vault, signer, keys, auth)

    def close(self) -> None:
        self.db.dispose()
