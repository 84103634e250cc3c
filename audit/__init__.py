"""The custody ledger: canonical entries, RFC 9162 Merkle proofs, signed checkpoints.

Pure: no database, no HTTP. Built in its own issue; until then custody events are kept by
``evidence.custody.record``.
"""
