"""The runtime every entry point builds: on a fresh data dir it makes its keys and vault; on
the next start (or in another process) it finds the same ones, so tokens and signatures
made by one are good in the other."""

from __future__ import annotations

import stat
from pathlib import Path

from evidence import migrate
from evidence.accounts import users
from evidence.runtime import Runtime
from evidence.settings import Settings


def test_a_fresh_data_dir_gets_keys_that_the_next_start_reuses(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = Runtime.build(settings)
    try:
        migrate.upgrade(first.db.engine)
        with first.db.transaction() as session:
            token = first.signer.issue(users.add_user(session, "pc@force.police.uk", "officer"))
        signed = first.ledger_keys.signer.sign("evidence runtime test\n")
    finally:
        first.close()
    keys = tmp_path / "data" / "keys"
    assert {p.name for p in keys.iterdir()} >= {"token.secret", "ledger.skey"}
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700 and stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700

    again = Runtime.build(settings)
    try:
        with again.db.sessions() as session:
            assert again.auth.authenticate(session, f"Bearer {token}").email == "pc@force.police.uk"
        assert again.ledger_keys.signer.verifier_key() == first.ledger_keys.signer.verifier_key()
        assert again.ledger_keys.signer.sign("evidence runtime test\n") == signed  # Ed25519: same key, same note
        assert again.vault.stat("originals/none") is None  # the vault is there and answers
    finally:
        again.close()
