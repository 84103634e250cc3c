"""The witnesses a ledger asks to cosign: ``EVIDENCE_WITNESSES=URL=VERIFIER_KEY,...``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from audit import VerificationError
from audit.cosignature import CosignatureVerifier

MAX_VKEY = 300  # the column that names a witness (models.WitnessState.witness)


@dataclass(frozen=True)
class Witness:
    url: str  # the submission prefix: POST {url}/add-checkpoint
    verifier: CosignatureVerifier

    @property
    def key(self) -> str:
        return self.verifier.vkey()


def parse_witnesses(value: str) -> list[Witness]:
    """Each ``URL=VERIFIER_KEY``, comma-separated; ValueError for one that is not."""
    found: dict[str, Witness] = {}
    for spec in (part.strip() for part in value.split(",")):
        if not spec:
            continue
        # A vkey holds no '=' (base64 of 33 bytes has no padding); a URL may.
        url, equals, vkey = spec.rpartition("=")
        parts = urlsplit(url)
        if not equals or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"witness {spec[:80]!r} is not URL=VERIFIER_KEY with an http(s) URL")
        try:
            verifier = CosignatureVerifier.from_vkey(vkey)
        except VerificationError as error:
            raise ValueError(f"witness {url}: {error}") from None
        if len(verifier.vkey()) > MAX_VKEY:
            raise ValueError(f"witness {url}: its key name is too long")
        if verifier.vkey() in found:
            raise ValueError(f"witness key {verifier.name} is given twice")
        found[verifier.vkey()] = Witness(url.rstrip("/"), verifier)
    return list(found.values())
