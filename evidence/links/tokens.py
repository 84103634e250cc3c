"""Link tokens: EdDSA (Ed25519) JWTs naming a link row, and the key ring that signs them.

Each key lives in ``<dir>/<kid>.pem``. Key ids sort by creation time, so the newest key
signs and every key in the folder verifies: rotation adds a key without breaking a live
link. Verification is strict and touches no database: the header must name a known key
and ``EdDSA`` exactly (``none``, HMAC with the public key as secret, RSA... all fail
before any key is used), and issuer, audience, subject, issue and expiry times are
required. The clock is the caller's, so tests pass time in.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from evidence.keys import load_or_create_text
from evidence.settings import Settings

ALGORITHM = "EdDSA"
AUDIENCE = "evidence-link"
KID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")
LINK_ID = re.compile(r"[0-9a-f]{32}")
_MAX_TOKEN = 2048


class InvalidToken(Exception):
    """Forged, damaged or not ours: answered with a plain 404, never recorded."""


@dataclass(frozen=True)
class Claims:
    link_id: str
    expires_at: datetime
    scope_hash: str


def scope_hash(item_ids: list[str], include_future: bool) -> str:
    """Binds the token to what was shared, so an edited row no longer matches its link."""
    text = ",".join(sorted(item_ids)) + ("|future" if include_future else "|fixed")
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class KeyRing:
    def __init__(self, folder: Path, issuer: str) -> None:
        self.folder = folder
        self.issuer = issuer
        self._public: dict[str, Ed25519PublicKey] = {}
        self._lock = threading.Lock()
        if not self._scan():
            self.rotate()

    def _scan(self) -> list[str]:
        found = sorted(p.stem for p in self.folder.glob("*.pem") if KID.fullmatch(p.stem))
        return found

    def _private(self, kid: str) -> Ed25519PrivateKey:
        key = serialization.load_pem_private_key((self.folder / f"{kid}.pem").read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"link key {kid} is not an Ed25519 key")
        return key

    def rotate(self) -> str:
        """Make a new key the current one; older keys keep verifying the links they signed."""
        import secrets

        now = datetime.now(UTC).replace(microsecond=0)
        existing = self._scan()
        if existing:  # ids must sort in order of creation, even two within one second
            last = datetime.strptime(existing[-1][:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            now = max(now, last + timedelta(seconds=1))
        kid = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
        pem = lambda: Ed25519PrivateKey.generate().private_bytes(  # noqa: E731
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        load_or_create_text(self.folder / f"{kid}.pem", pem)
        return kid

    @property
    def current(self) -> str:
        # Read from the folder each time: another process (`evidence links rotate-key`)
        # may have added a key since we started.
        return self._scan()[-1]

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        if not KID.fullmatch(kid):
            return None
        with self._lock:
            if kid not in self._public:
                if not (self.folder / f"{kid}.pem").is_file():
                    return None
                self._public[kid] = self._private(kid).public_key()
            return self._public[kid]

    def issue(self, link_id: str, created_at: datetime, expires_at: datetime, scope: str, kid: str) -> str:
        """The link's token; the same inputs always give the same token (Ed25519 is
        deterministic), which is how a link's URL is shown again later."""
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": link_id,
            "iat": int(created_at.timestamp()),
            "exp": int(expires_at.timestamp()),
            "scp": scope,
        }
        return jwt.encode(claims, self._private(kid), algorithm=ALGORITHM, headers={"kid": kid, "typ": "JWT"})

    def verify(self, token: str, now: datetime) -> Claims:
        """The claims of a genuine token, or InvalidToken. An expired but genuine token
        still verifies (its expiry is in the claims): the caller answers 410 and records it."""
        if len(token) > _MAX_TOKEN:
            raise InvalidToken("too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("unreadable header") from None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise InvalidToken("wrong algorithm or no key id")
        key = self.public_key(kid)
        if key is None:
            raise InvalidToken("unknown key")
        try:
            claims = jwt.decode(
                token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=self.issuer,
                # Times are checked below against the caller's clock.
                options={"require": ["iss", "aud", "sub", "iat", "exp", "scp"], "verify_exp": False,
                         "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            raise InvalidToken("bad signature or claims") from None
        sub, iat, exp, scp = claims["sub"], claims["iat"], claims["exp"], claims["scp"]
        if not (isinstance(sub, str) and LINK_ID.fullmatch(sub) and isinstance(scp, str)):
            raise InvalidToken("malformed claims")
        if not (isinstance(iat, int) and isinstance(exp, int)) or iat > now.timestamp() + 60 or exp <= iat:
            raise InvalidToken("impossible times")
        return Claims(sub, datetime.fromtimestamp(exp, UTC), scp)


def keyring_for(settings: Settings) -> KeyRing:
    return KeyRing(settings.link_keys_dir or settings.data_path / "keys" / "links", settings.link_issuer)
