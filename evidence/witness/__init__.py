"""Witnesses: another force's service that cosigns this ledger's checkpoints, and the ledger's
side that asks them (C2SP tlog-witness and tlog-cosignature; the formats are in :mod:`audit`).

- `keys`: a witness's signing key file and its verifier key.
- `state`: what a witness keeps per log, one small file each, replaced atomically.
- `server`: the witness's HTTP service (``POST /add-checkpoint``), its own Starlette app.
- `client`: one add-checkpoint request to a witness.
- `config`: the ``EVIDENCE_WITNESSES`` setting.
- `cosign`: the ledger asking its witnesses, keeping their cosignatures, and reading them back.
"""
