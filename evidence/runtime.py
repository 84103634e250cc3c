"""Builds the pieces every entry point needs (database, vault, token signer) from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from audit import NoteSigner, generate_signer
from evidence import custody, migrate
from evidence.accounts.access import Authenticator, TokenSigner
from evidence.accounts.oidc import OidcVerifier
from evidence.custody.actions import Action
from evidence.custody.ledger import Keys
from evidence.db import SQLITE_SUFFIXES, Database
from evidence.filemodes import inside, make_dirs, make_private, private_dir, private_tree
from evidence.keys import load_or_create_secret, load_or_create_text
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
        secure_data_dir(settings)
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

    def upgrade_schema(self) -> None:
        """Migrations, on the host that runs this (a server starting, a command): an upgrade of a
        database in use is on the custody record, as the service account's."""
        before = migrate.upgrade(self.db.engine)
        if before is not None:
            with self.db.transaction() as session:
                custody.record(session, Action.SCHEMA_UPGRADED, {}, custody.SERVICE,
                               {"from": before, "to": migrate.HEAD})

    def close(self) -> None:
        self.db.dispose()


def secure_data_dir(settings: Settings) -> None:
    """The data dir, its keys and its SQLite files readable by the service user only, also
    when an older install left them open (the database files: :mod:`evidence.db`). Keys the
    operator keeps elsewhere are tightened where possible, else reported."""
    data = private_dir(settings.data_path)
    tmp = settings.effective_tmp_dir
    if inside(tmp, data):
        private_dir(tmp)
    else:
        make_dirs(tmp)  # a scratch disk of the operator's: what we put in it is ours, not the folder
    private_tree(data / "keys")
    for given in (settings.token_secret_file, settings.ledger_key_file):
        if given is not None:
            make_private(given, strict=inside(given, data))
    links = settings.link_keys_dir
    if links is not None and inside(links, data):
        private_tree(links)
    elif links is not None and links.is_dir():
        for key in links.iterdir():
            if key.is_file():
                make_private(key, strict=False)
    if not settings.broker_url:  # the embedded broker's SQLite file
        for suffix in SQLITE_SUFFIXES:
            make_private(Path(f"{data / 'broker.db'}{suffix}"))
