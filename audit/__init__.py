"""The custody ledger: canonical entries, RFC 9162 Merkle proofs, signed checkpoints.

Pure: no database, no HTTP, nothing else from the project. Storage comes in as plain values
(the stored Merkle nodes as a mapping, the entry bytes) and the caller wires it to a database.

- `canonical`: RFC 8785 canonical JSON.
- `entry`: `Entry`, its canonical encoding and leaf hash.
- `merkle`: hashing, which stored nodes a root or proof needs, and building proofs from them.
- `rebuild`: a whole log's tree recomputed from its leaves, block by block, checked against
  the stored nodes (whole, or split between two workers).
- `verify`: pure proof verification.
- `checkpoint`: C2SP checkpoints in Ed25519 signed notes.
- `errors`: `VerificationError`, raised by every verification that fails.
"""

from audit.canonical import canonical
from audit.checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    generate_signer,
    key_id,
    open_checkpoint,
    open_note,
)
from audit.entry import Entry, format_time, parse_time
from audit.errors import VerificationError
from audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    TreeBuilder,
    append_needs,
    complete_node_count,
    consistency_nodes,
    consistency_proof_from,
    fold,
    inclusion_nodes,
    inclusion_proof_from,
    leaf_hash,
    node_hash,
    nodes_to_store_on_append,
    range_nodes,
    root_from,
    root_nodes,
)
from audit.rebuild import Rebuild, WrongNode
from audit.verify import (
    root_from_consistency,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Checkpoint",
    "Entry",
    "NoteSigner",
    "NoteVerifier",
    "Rebuild",
    "TreeBuilder",
    "VerificationError",
    "WrongNode",
    "append_needs",
    "canonical",
    "complete_node_count",
    "consistency_nodes",
    "consistency_proof_from",
    "fold",
    "format_time",
    "generate_signer",
    "inclusion_nodes",
    "inclusion_proof_from",
    "key_id",
    "leaf_hash",
    "node_hash",
    "nodes_to_store_on_append",
    "open_checkpoint",
    "open_note",
    "parse_time",
    "range_nodes",
    "root_from",
    "root_from_consistency",
    "root_from_inclusion",
    "root_nodes",
    "verify_consistency",
    "verify_inclusion",
]
