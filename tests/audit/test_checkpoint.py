"""audit.checkpoint: C2SP checkpoints and signed notes, against golang.org/x/mod/sumdb/note's vectors."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    VerificationError,
    generate_signer,
    open_checkpoint,
    open_note,
)
from audit.merkle import leaf_hash

# From github.com/golang/mod sumdb/note/note_test.go (BSD 3-Clause); see vectors/PROVENANCE.md.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_B64 = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
PETER_SIG = f"— PeterNeumann {PETER_B64}\n"
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

# From github.com/C2SP/C2SP tlog-checkpoint.md (its signature's key is not published there).
C2SP_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

ORIGIN = "evidence.example/ledger"
ROOT = leaf_hash(b"root")


# -- the reference vectors -----------------------------------------------------------------------


def test_go_signer_reproduces_the_reference_note_byte_for_byte() -> None:
    signer = NoteSigner.from_skey(PETER_SKEY)
    assert signer.name == "PeterNeumann" and signer.key_id.hex() == "c74f20a3"
    assert signer.sign(TEXT) == TEXT + "\n" + PETER_SIG
    assert signer.verifier_key() == PETER_VKEY
    assert signer.to_skey() == PETER_SKEY


def test_go_note_opens() -> None:
    peter = NoteVerifier.from_vkey(PETER_VKEY)
    enoch = NoteVerifier.from_vkey(ENOCH_VKEY)
    assert peter.vkey() == PETER_VKEY and enoch.vkey() == ENOCH_VKEY
    assert open_note(TEXT + "\n" + PETER_SIG, peter) == TEXT
    # Several signatures, one known: the unknown one is ignored, whichever order.
    assert open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, peter) == TEXT
    assert open_note(TEXT + "\n" + ENOCH_SIG + PETER_SIG, peter) == TEXT
    assert open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter, enoch]) == TEXT
    assert open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, enoch) == TEXT
    with pytest.raises(VerificationError, match="not signed by any known key"):
        open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])


def test_go_invalid_signature_by_a_known_key_rejects_the_note() -> None:
    peter = NoteVerifier.from_vkey(PETER_VKEY)
    broken = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(VerificationError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        open_note(TEXT + "\n" + broken, peter)
    # Even next to a good one.
    with pytest.raises(VerificationError, match="invalid signature"):
        open_note(TEXT + "\n" + PETER_SIG + broken, peter)
    # An invalid signature by a key we do not know is someone else's problem.
    enoch_broken = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    assert open_note(TEXT + "\n" + PETER_SIG + enoch_broken, peter) == TEXT


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "— Bad Name " + PETER_B64,
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG * 101,
        # And a few more of our own.
        TEXT + "\n" + PETER_SIG.replace("—", "-"),
        TEXT + "\n" + PETER_SIG.replace(" x08", "  x08"),
        TEXT + "\n" + PETER_SIG.replace("AM=", "AM"),
        TEXT + "\n" + PETER_SIG.replace("AM=", "AN="),  # non-canonical base64
        TEXT + "\n" + "— PeterNeumann x08go/Y=\n",  # too short to hold a key ID and a signature
        TEXT.replace("\n", "\r\n") + "\n" + PETER_SIG,
        TEXT + "\n" + PETER_SIG.replace("\n", "\r\n"),
        TEXT + "\n" + "\ud800" + PETER_SIG,
        "",
        "\n\n",
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(VerificationError):
        open_note(note, NoteVerifier.from_vkey(PETER_VKEY))


def test_go_verifier_key_manglings_are_refused() -> None:
    NoteVerifier.from_vkey(PETER_VKEY)
    b = PETER_VKEY
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if i != 0 or j != len(b):
                with pytest.raises(VerificationError):
                    NoteVerifier.from_vkey(b[i:j])
    for i in range(len(b)):
        with pytest.raises(VerificationError):
            NoteVerifier.from_vkey(b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :])
    with pytest.raises(VerificationError):  # wrong length key, with adjusted key hash
        NoteVerifier.from_vkey("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(VerificationError):  # unknown algorithm, with adjusted key hash
        NoteVerifier.from_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_go_signer_key_manglings_are_refused() -> None:
    b = PETER_SKEY
    cases = [b[i:j] for i in range(0, len(b) + 1, 3) for j in range(i + 1, len(b) + 1, 2) if (i, j) != (0, len(b))]
    cases += [b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :] for i in range(len(b))]
    for mangled in cases:
        with pytest.raises(ValueError):
            NoteSigner.from_skey(mangled)


# -- our own checkpoints -------------------------------------------------------------------------


def test_sign_and_open_a_checkpoint() -> None:
    signer = generate_signer(ORIGIN)
    checkpoint = Checkpoint(ORIGIN, 42, ROOT)
    note = signer.sign(checkpoint.text())
    assert note.startswith(f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n\n— {ORIGIN} ")
    verifier = NoteVerifier.from_vkey(signer.verifier_key())
    assert open_checkpoint(note, verifier) == checkpoint
    assert open_checkpoint(note, verifier, origin=ORIGIN) == checkpoint
    with pytest.raises(VerificationError, match=r"not 'other\.example/log'"):
        open_checkpoint(note, verifier, origin="other.example/log")
    # Keys survive serialisation.
    again = NoteSigner.from_skey(signer.to_skey())
    assert again.verifier_key() == signer.verifier_key()
    assert open_note(again.sign(checkpoint.text()), verifier) == checkpoint.text()


def test_tampering_is_caught() -> None:
    signer = generate_signer(ORIGIN)
    verifier = signer.verifier
    text = Checkpoint(ORIGIN, 42, ROOT).text()
    note = signer.sign(text)
    sig_start = note.index("\n\n") + 2
    # Any change to the text: size, root, origin.
    for bad in [note.replace("\n42\n", "\n43\n"), note.replace(ORIGIN + "\n", ORIGIN + "x\n", 1),
                note.replace(base64.b64encode(ROOT).decode(), base64.b64encode(leaf_hash(b"other")).decode())]:
        with pytest.raises(VerificationError, match="invalid signature"):
            open_note(bad, verifier)
    # Extension lines are signed too.
    with pytest.raises(VerificationError):
        open_note(text + "extra\n" + note[len(text) :], verifier)
    # Any bit of the signature.
    blob = base64.b64decode(note[sig_start:].split(" ")[-1])
    for bit in range(32, len(blob) * 8, 7):  # past the key ID: a changed ID is just an unknown key
        changed = bytearray(blob)
        changed[bit // 8] ^= 1 << (bit % 8)
        bad = note[:sig_start] + f"— {ORIGIN} {base64.b64encode(bytes(changed)).decode()}\n"
        with pytest.raises(VerificationError):
            open_note(bad, verifier)


def test_other_keys_and_names() -> None:
    signer = generate_signer(ORIGIN)
    note = signer.sign(Checkpoint(ORIGIN, 1, ROOT).text())
    # Another key with the same name: its ID differs, so the signature is unknown to it.
    with pytest.raises(VerificationError, match="not signed by any known key"):
        open_note(note, generate_signer(ORIGIN).verifier)
    # Same key under another name.
    renamed = NoteVerifier("other.example/log", signer.private_key.public_key())
    with pytest.raises(VerificationError, match="not signed by any known key"):
        open_note(note, renamed)
    # The signature line relabelled with another name.
    with pytest.raises(VerificationError):
        open_note(note.replace(f"— {ORIGIN} ", "— other.example/log "), signer.verifier)
    # A note re-signed by an attacker's key with the right name but its own ID.
    forged = NoteSigner(Ed25519PrivateKey.generate(), ORIGIN).sign(Checkpoint(ORIGIN, 1, ROOT).text())
    with pytest.raises(VerificationError):
        open_note(forged, signer.verifier)
    # A forger who copies the real key ID into its own signature line fails the signature check.
    real_id = signer.key_id
    forged_blob = base64.b64decode(forged.rsplit(" ", 1)[1])
    spoofed = forged.rsplit(" ", 1)[0] + " " + base64.b64encode(real_id + forged_blob[4:]).decode() + "\n"
    with pytest.raises(VerificationError, match="invalid signature"):
        open_note(spoofed, signer.verifier)


def test_bad_names_and_texts_are_refused() -> None:
    for name in ["", "a b", "a+b", "a\nb", "a\u2003b"]:
        with pytest.raises(ValueError):
            generate_signer(name)
    signer = generate_signer(ORIGIN)
    for text in ["no newline", "a\x00b\n", "\ud800\n"]:
        with pytest.raises(ValueError):
            signer.sign(text)


# -- checkpoint text -------------------------------------------------------------------------------


def test_checkpoint_text_round_trips() -> None:
    c2sp = Checkpoint.parse(C2SP_TEXT)
    assert (c2sp.origin, c2sp.size) == ("example.com/behind-the-sofa", 20852163)
    assert c2sp.text() == C2SP_TEXT
    with_extensions = Checkpoint(ORIGIN, 0, ROOT, ("ext one", "ext two"))
    assert Checkpoint.parse(with_extensions.text()) == with_extensions
    assert with_extensions.text().endswith("\next one\next two\n")


@pytest.mark.parametrize(
    "text",
    [
        C2SP_TEXT[:-1],
        "example.com/log\n5\n",
        "\n5\n" + C2SP_TEXT.split("\n")[2] + "\n",
        C2SP_TEXT.replace("20852163", "020852163"),
        C2SP_TEXT.replace("20852163", "+20852163"),
        C2SP_TEXT.replace("20852163", " 20852163"),
        C2SP_TEXT.replace("20852163", "-1"),
        C2SP_TEXT.replace("20852163", "２"),  # a non-ASCII digit
        C2SP_TEXT.replace("2I=", "2J="),  # non-canonical base64
        C2SP_TEXT.replace("2I=", "2I"),
        C2SP_TEXT.replace("CsUY", "CsU"),  # 31 bytes
        C2SP_TEXT + "\n",  # empty extension line
        C2SP_TEXT.replace("\n", "\r\n"),
        "",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(VerificationError):
        Checkpoint.parse(text)


def test_checkpoint_values_are_checked() -> None:
    for args in [("", 1, ROOT), ("a\nb", 1, ROOT), (ORIGIN, -1, ROOT), (ORIGIN, True, ROOT), (ORIGIN, 1, ROOT[:31])]:
        with pytest.raises(ValueError):
            Checkpoint(*args)
    with pytest.raises(ValueError):
        Checkpoint(ORIGIN, 1, ROOT, ("",))
