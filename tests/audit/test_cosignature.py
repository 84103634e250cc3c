"""audit.cosignature: C2SP tlog-cosignature (Ed25519 cosignature/v1), against the spec's example
and transparency-dev/formats' vectors (see vectors/PROVENANCE.md), a naive reference built
straight from the spec's text, and corrupted cosignatures."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import Checkpoint, NoteSigner, NoteVerifier, VerificationError, open_note
from audit.cosignature import (
    CosignatureVerifier,
    Cosigner,
    check_quorum,
    cosignature_key_id,
    cosignatures,
    signed_message,
)
from audit.merkle import leaf_hash

# From github.com/C2SP/C2SP tlog-cosignature.md (commit 01194db11950a0ae2b2b2401afa0a4063a822458):
# the example checkpoint, its witness's cosignature line and the signed message it shows. The
# witness's public key is not published there, so the signature itself cannot be checked.
SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_LOG_SIG = ("— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1g"
                "GzGku9nTo+zyWE+xeMcTOAYQ8=\n")
SPEC_COSIG = ("— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZ"
              "qhf5nNo0xUe+mbIUBkBIfZ+qnA==\n")
SPEC_MESSAGE = ("cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
                "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")

# From github.com/transparency-dev/formats note/note_cosigv1_test.go (commit 091ce41666c0...,
# Apache 2.0 / BSD): a native cosignature/v1 verifier key, an Ed25519 (0x01) note key, and a
# cosignature whose timestamp is 1727964367.
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
TEST_NOTE_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
TD_COSIG_B64 = "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="

# The Go note signer key of test_checkpoint.py, used here as a witness's key.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"

TEXT = Checkpoint("evidence.example/ledger", 7, leaf_hash(b"root")).text()


def naive_cosignature(seed: bytes, name: str, text: str, timestamp: int) -> str:
    """Straight from the spec's text, sharing no code with audit.cosignature."""
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw()
    key_id = hashlib.sha256(name.encode() + b"\n" + b"\x04" + public).digest()[:4]
    message = b"cosignature/v1\n" + b"time " + str(timestamp).encode() + b"\n" + text.encode()
    blob = key_id + timestamp.to_bytes(8, "big") + key.sign(message)
    return "\u2014 " + name + " " + base64.b64encode(blob).decode() + "\n"


def test_the_spec_example_message_and_line() -> None:
    assert signed_message(SPEC_TEXT, 1679315147) == SPEC_MESSAGE.encode()
    blob = base64.b64decode(SPEC_COSIG.split(" ")[2])
    assert len(blob) == 4 + 8 + 64
    assert struct.unpack(">Q", blob[4:12])[0] == 1679315147  # the time line of the spec's message
    # A client that trusts only the log's key ignores the cosignature line, and the reverse.
    witness = CosignatureVerifier("witness.example.com/w1", Ed25519PrivateKey.generate().public_key())
    assert cosignatures(SPEC_TEXT + "\n" + SPEC_LOG_SIG + SPEC_COSIG, [witness]) == {}


def test_transparency_dev_vectors() -> None:
    remora = CosignatureVerifier.from_vkey(REMORA_VKEY)
    assert remora.name == "remora.n621.de" and remora.key_id.hex() == "da77ade7"
    assert remora.vkey() == REMORA_VKEY
    # The key ID is SHA-256(name || 0x0A || 0x04 || key)[:4]: not the note key's 0x01 form.
    assert cosignature_key_id(remora.name, remora.public_bytes) == bytes.fromhex("da77ade7")
    # An Ed25519 note key (0x01) is a log's key: refused as a witness's (strict), read as a note key.
    with pytest.raises(VerificationError, match="not a cosignature/v1 key"):
        CosignatureVerifier.from_vkey(TEST_NOTE_VKEY)
    assert NoteVerifier.from_vkey(TEST_NOTE_VKEY).name == "TEST"
    blob = base64.b64decode(TD_COSIG_B64)
    assert len(blob) == 76 and struct.unpack(">Q", blob[4:12])[0] == 1727964367


@pytest.mark.parametrize("bad", [
    "remora.n621.de+da77ade8+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",  # wrong ID
    "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw",  # short key
    "remora.n621.de+da77ade7",  # two parts
    "remora.n621.de+DA77ADE7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",  # upper-case hex
    "rekor.sigstore.dev+12345678+AwEB",  # another algorithm
    "a b+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",  # space in the name
])
def test_malformed_witness_keys_are_refused(bad: str) -> None:
    with pytest.raises(VerificationError):
        CosignatureVerifier.from_vkey(bad)


def test_a_cosigner_matches_the_naive_reference_byte_for_byte() -> None:
    signer = NoteSigner.from_skey(PETER_SKEY)
    cosigner = Cosigner(signer)
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])[1:]
    for timestamp in (0, 1, 1679315147, 2**63 - 1):
        assert cosigner.cosign(TEXT, timestamp) == naive_cosignature(seed, "PeterNeumann", TEXT, timestamp)
    assert cosigner.key_id != signer.key_id  # 0x04 vs 0x01
    # The note key's material "ARpc2Q..." (0x01 || key) becomes "BBpc2Q..." (0x04 || key).
    public = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]
    key_id = hashlib.sha256(b"PeterNeumann\n\x04" + public).digest()[:4].hex()
    assert cosigner.vkey() == f"PeterNeumann+{key_id}+BBpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    assert CosignatureVerifier.from_vkey(cosigner.vkey()).public_bytes == signer.verifier.public_bytes
    with pytest.raises(ValueError):
        cosigner.cosign(TEXT, 2**63)


def test_cosignatures_are_counted_per_witness() -> None:
    log = NoteSigner(Ed25519PrivateKey.generate(), "evidence.example/ledger")
    one, two = (Cosigner(NoteSigner(Ed25519PrivateKey.generate(), f"w{n}.example")) for n in (1, 2))
    note = log.sign(TEXT) + one.cosign(TEXT, 100) + two.cosign(TEXT, 200) + one.cosign(TEXT, 300)
    found = cosignatures(note, [one.verifier, two.verifier])
    assert {c.name: c.timestamp for c in found.values()} == {"w1.example": 100, "w2.example": 200}
    assert len(check_quorum(note, [one.verifier, two.verifier], 2)) == 2
    # The log's own signature still opens the note, the cosignatures being unknown keys to it.
    assert open_note(note, log.verifier) == TEXT
    with pytest.raises(VerificationError, match="1 valid cosignature"):
        check_quorum(log.sign(TEXT) + two.cosign(TEXT, 1), [one.verifier, two.verifier], 2)
    stranger = CosignatureVerifier("w1.example", Ed25519PrivateKey.generate().public_key())
    with pytest.raises(VerificationError, match="0 valid cosignature"):
        check_quorum(note, [stranger], 1)
    with pytest.raises(ValueError, match="needs at least 2"):
        check_quorum(note, [one.verifier, one.verifier], 2)
    # A note signature by the witness's key (0x01) is not a cosignature.
    as_note = NoteSigner(one._private_key, "w1.example").sign(TEXT)
    assert cosignatures(as_note, [one.verifier]) == {}


def test_every_corrupted_byte_of_a_cosignature_is_refused() -> None:
    witness = Cosigner(NoteSigner(Ed25519PrivateKey.generate(), "w.example"))
    line = witness.cosign(TEXT, 1_700_000_000)
    blob = base64.b64decode(line.split(" ")[2])
    for index in range(4, len(blob)):  # the key ID's bytes make it someone else's line instead
        for flip in (0x01, 0x80):
            bad = bytearray(blob)
            bad[index] ^= flip
            forged = f"— w.example {base64.b64encode(bytes(bad)).decode()}\n"
            with pytest.raises(VerificationError, match="invalid cosignature"):
                cosignatures(TEXT + "\n" + forged, [witness.verifier])
    for index in range(4):
        bad = bytearray(blob)
        bad[index] ^= 1
        assert cosignatures(TEXT + "\n" + f"— w.example {base64.b64encode(bytes(bad)).decode()}\n",
                            [witness.verifier]) == {}
    # The whole text is covered, extension lines too; a short blob is not a cosignature.
    extended = Checkpoint("evidence.example/ledger", 7, leaf_hash(b"root"), ("ext",)).text()
    assert len(cosignatures(extended + "\n" + witness.cosign(extended, 5), [witness.verifier])) == 1
    with pytest.raises(VerificationError, match="invalid cosignature"):
        cosignatures(extended.replace("ext", "exu") + "\n" + witness.cosign(extended, 5), [witness.verifier])
    short = base64.b64encode(witness.key_id + b"\x00" * 70).decode()
    with pytest.raises(VerificationError):
        cosignatures(TEXT + "\n" + f"— w.example {short}\n", [witness.verifier])


def test_a_verifier_checks_the_time_it_is_given() -> None:
    key = Ed25519PrivateKey.generate()
    witness = Cosigner(NoteSigner(key, "w.example"))
    blob = base64.b64decode(witness.cosign(TEXT, 10).split(" ")[2])
    moved = blob[:4] + struct.pack(">Q", 11) + blob[12:]  # the same signature under another time
    assert witness.verifier.timestamp_if_valid(TEXT, blob) == 10
    assert witness.verifier.timestamp_if_valid(TEXT, moved) is None
    assert isinstance(witness.verifier.public_key, Ed25519PublicKey)
