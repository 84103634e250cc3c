"""A deliberately naive RFC 9162 Merkle tree, written straight from section 2.1, to test against.

MTH, PATH and PROOF/SUBPROOF are the RFC's recursive definitions over the list of entries
D[lo:hi] (ranges instead of slices; MTH results are memoised so that testing every proof of a
few hundred trees stays quick, which changes nothing about what is computed). It shares no code
with audit/merkle.py except SHA-256.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class NaiveTree:
    def __init__(self, entries: list[bytes]) -> None:
        self.entries = entries
        self.mth = lru_cache(maxsize=None)(self._mth)

    def _mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi])."""
        n = hi - lo
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return hashlib.sha256(b"\x00" + self.entries[lo]).digest()
        k = _largest_power_of_two_below(n)
        return hashlib.sha256(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi)).digest()

    def root(self, n: int) -> bytes:
        return self.mth(0, n)

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """PATH(m, D[lo:hi]), m relative to lo."""
        n = hi - lo
        if n == 1:
            return []
        k = _largest_power_of_two_below(n)
        if m < k:
            return self.path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self.path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

    def inclusion(self, m: int, n: int) -> list[bytes]:
        return self.path(m, 0, n)

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        """SUBPROOF(m, D[lo:hi], b)."""
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return self.subproof(m, lo, lo + k, b) + [self.mth(lo + k, hi)]
        return self.subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]

    def consistency(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[n])."""
        return self.subproof(m, 0, n, True)
