"""The one error every failed verification raises.

Anything that checks the ledger (an entry's bytes, a proof, a signed checkpoint) raises
`VerificationError` with a message saying what did not hold, so a caller needs one ``except``
to turn any failure into a clear report. Programming mistakes (a proof asked for an index
past the end of the tree, a float handed to the canonical encoder) stay ``ValueError`` and
``TypeError``: they are bugs in the caller, not evidence of tampering.
"""

from __future__ import annotations


class VerificationError(Exception):
    """Something the ledger claims does not verify; the message says what."""
