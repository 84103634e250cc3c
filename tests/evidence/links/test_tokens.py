"""Link tokens: only a genuine EdDSA token of a known key verifies; every edit, every other
algorithm and every unknown key is refused, before anything else is looked at."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from evidence.links.tokens import AUDIENCE, InvalidToken, KeyRing, scope_hash

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LINK = "a" * 32
SCOPE = scope_hash(["b" * 32], False)


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing(tmp_path / "links", "evidence")


def issue(ring: KeyRing) -> str:
    return ring.issue(LINK, NOW, NOW + timedelta(days=7), SCOPE, ring.current)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict, dict, str]:  # type: ignore[type-arg]
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(header))), json.loads(base64.urlsafe_b64decode(pad(payload))), signature


def reassemble(header: dict, payload: dict, signature: str) -> str:  # type: ignore[type-arg]
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{signature}"


def test_a_genuine_token_verifies(ring: KeyRing) -> None:
    claims = ring.verify(issue(ring), NOW)
    assert (claims.link_id, claims.scope_hash, claims.expires_at) == (LINK, SCOPE, NOW + timedelta(days=7))


def test_the_same_link_gives_the_same_token(ring: KeyRing) -> None:
    assert issue(ring) == issue(ring)  # Ed25519 is deterministic: URLs can be shown again


def test_the_first_start_makes_one_key_with_a_sortable_id(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "k", "evidence")
    assert [p.name for p in (tmp_path / "k").iterdir()] == [f"{ring.current}.pem"]
    assert (tmp_path / "k" / f"{ring.current}.pem").stat().st_mode & 0o077 == 0


def test_rotation_keeps_old_links_working(ring: KeyRing) -> None:
    old_kid = ring.current
    old = issue(ring)
    new_kid = ring.rotate()
    assert ring.current == new_kid != old_kid
    assert parts(issue(ring))[0]["kid"] == new_kid
    assert ring.verify(old, NOW).link_id == LINK


def test_a_key_added_by_another_process_is_found(ring: KeyRing, tmp_path: Path) -> None:
    other = KeyRing(ring.folder, "evidence")
    kid = other.rotate()
    token = other.issue(LINK, NOW, NOW + timedelta(days=1), SCOPE, kid)
    assert ring.verify(token, NOW).link_id == LINK


@pytest.mark.parametrize("claim, value", [
    ("sub", "b" * 32), ("aud", "evidence-api"), ("iss", "someone"), ("exp", 4102444800),
    ("iat", 1), ("scp", scope_hash(["c" * 32], False)),
])
def test_any_changed_claim_is_refused(ring: KeyRing, claim: str, value: object) -> None:
    header, payload, signature = parts(issue(ring))
    payload[claim] = value
    with pytest.raises(InvalidToken):
        ring.verify(reassemble(header, payload, signature), NOW)


@pytest.mark.parametrize("claim", ["sub", "aud", "iss", "exp", "iat", "scp"])
def test_a_missing_claim_is_refused_even_when_signed(ring: KeyRing, claim: str) -> None:
    claims = {"iss": "evidence", "aud": AUDIENCE, "sub": LINK, "iat": int(NOW.timestamp()),
              "exp": int(NOW.timestamp()) + 3600, "scp": SCOPE}
    del claims[claim]
    key = serialization.load_pem_private_key((ring.folder / f"{ring.current}.pem").read_bytes(), None)
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": ring.current})  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        ring.verify(token, NOW)


def test_signed_nonsense_claims_are_refused(ring: KeyRing) -> None:
    key = serialization.load_pem_private_key((ring.folder / f"{ring.current}.pem").read_bytes(), None)
    base = {"iss": "evidence", "aud": AUDIENCE, "sub": LINK, "iat": int(NOW.timestamp()),
            "exp": int(NOW.timestamp()) + 3600, "scp": SCOPE}
    for bad in ({"sub": "../../etc"}, {"sub": 7}, {"iat": int(NOW.timestamp()) + 86400}, {"exp": 5},
                {"iat": "now"}, {"scp": 1}):
        token = jwt.encode({**base, **bad}, key, algorithm="EdDSA", headers={"kid": ring.current})  # type: ignore[arg-type]
        with pytest.raises(InvalidToken):
            ring.verify(token, NOW)


@pytest.mark.parametrize("cut", [1, 10, 86])
def test_a_cut_signature_is_refused(ring: KeyRing, cut: int) -> None:
    token = issue(ring)
    with pytest.raises(InvalidToken):
        ring.verify(token[:-cut], NOW)


def test_no_signature_and_garbage_are_refused(ring: KeyRing) -> None:
    header, payload, _ = parts(issue(ring))
    for token in (reassemble(header, payload, ""), "", "a.b.c", "....", "x" * 5000, issue(ring) + "."):
        with pytest.raises(InvalidToken):
            ring.verify(token, NOW)


def test_a_flipped_signature_bit_is_refused(ring: KeyRing) -> None:
    header, payload, signature = parts(issue(ring))
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 1
    with pytest.raises(InvalidToken):
        ring.verify(reassemble(header, payload, b64(bytes(raw))), NOW)


def test_alg_none_is_refused(ring: KeyRing) -> None:
    header, payload, _ = parts(issue(ring))
    for alg in ("none", "None", "NONE"):
        with pytest.raises(InvalidToken):
            ring.verify(reassemble({**header, "alg": alg}, payload, ""), NOW)


def _public_pem(ring: KeyRing) -> bytes:
    key = ring.public_key(ring.current)
    assert key is not None
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_with_the_public_key_as_secret_is_refused(ring: KeyRing, alg: str) -> None:
    """Algorithm confusion: the public key is no secret, so an HMAC made with it proves nothing."""
    import hashlib
    import hmac

    header, payload, _ = parts(issue(ring))
    header["alg"] = alg
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    for secret in (_public_pem(ring), _public_pem(ring).strip(), ring.public_key(ring.current).public_bytes_raw()):  # type: ignore[union-attr]
        mac = hmac.new(secret, signing_input.encode(), getattr(hashlib, f"sha{alg[2:]}")).digest()
        with pytest.raises(InvalidToken):
            ring.verify(f"{signing_input}.{b64(mac)}", NOW)


def test_other_asymmetric_algorithms_are_refused(ring: KeyRing) -> None:
    _, payload, _ = parts(issue(ring))
    keys = [("RS256", rsa.generate_private_key(65537, 2048)), ("PS256", rsa.generate_private_key(65537, 2048)),
            ("ES256", ec.generate_private_key(ec.SECP256R1())), ("EdDSA", ed25519.Ed25519PrivateKey.generate())]
    for alg, key in keys:
        token = jwt.encode(payload, key, algorithm=alg, headers={"kid": ring.current})  # type: ignore[arg-type]
        with pytest.raises(InvalidToken):  # the last: right algorithm, someone else's key
            ring.verify(token, NOW)


@pytest.mark.parametrize("kid", [None, "", "20250101T000000Z-00000000", "../../keys/token", "x" * 300, 5,
                                 "20250101T000000Z-0000000g"])
def test_an_unknown_or_missing_kid_is_refused(ring: KeyRing, kid: object) -> None:
    header, payload, signature = parts(issue(ring))
    header = {**header, "kid": kid} if kid is not None else {k: v for k, v in header.items() if k != "kid"}
    with pytest.raises(InvalidToken):
        ring.verify(reassemble(header, payload, signature), NOW)


def test_a_token_names_the_key_that_signed_it(ring: KeyRing) -> None:
    old = ring.current
    token = issue(ring)
    ring.rotate()
    header, payload, signature = parts(token)
    with pytest.raises(InvalidToken):  # genuine signature, but claimed for the other key
        ring.verify(reassemble({**header, "kid": ring.current}, payload, signature), NOW)
    assert ring.verify(token, NOW).link_id == LINK and parts(token)[0]["kid"] == old


def test_keys_made_within_one_second_still_sort_in_order(ring: KeyRing) -> None:
    made = [ring.rotate() for _ in range(3)]
    assert made == sorted(made) and ring.current == made[-1]
