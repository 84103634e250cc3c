"""An item's custody report, and its offline verification.

The report lists every ledger entry about the item, each with its inclusion proof
against a signed checkpoint, so anyone holding the ledger's public key can check it
without the server. The JSON form is canonical JSON (RFC 8785) carrying a signature over
its content; the HTML form embeds that JSON and is itself signed over every byte; the PDF form
attaches that JSON and carries a signature over its bytes after its end
(:mod:`evidence.custody.report_pdf`); the CASE/UCO form carries the JSON report and a signature
over the document's exact bytes (:func:`sign_case`). Whatever the form, changing any byte
makes :func:`verify_report` refuse it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from audit import Entry, NoteVerifier, VerificationError, canonical, format_time, merkle, open_note, verify_inclusion
from audit.cosignature import Cosignature, CosignatureVerifier, check_quorum
from evidence import custody
from evidence.custody import cosignatures, ledger, report_pdf
from evidence.custody.actions import Action
from evidence.custody.disclosure import Internals, scrub, withheld_because
from evidence.custody.report_case import to_case
from evidence.custody.report_html import embedded_json, render
from evidence.errors import InvalidInput, NotFound
from evidence.models import Case, Checkpoint, CustodyEvent, Derivative, Item, utcnow

FORMAT = "evidence-custody-report/1"
HTML_SIGNATURE_PREFIX = "<!-- evidence-signature "
# What the ledger key signs for a report: never parseable as a checkpoint.
_SIGNED = "evidence custody report v1\n{digest}\n"
# Case-wide entries that concern every item of the case (its outcome and holds decide what
# becomes of each of them).
_CASE_ACTIONS = frozenset({Action.CASE_CREATED, Action.CASE_OUTCOME, Action.CASE_HELD, Action.CASE_RELEASED})
# A link's entries: those that name the items it covers concern them.
_LINK_ACTIONS = frozenset(action for action in Action if action.startswith("link."))


def build(session: Session, keys: ledger.Keys, item_id: str, actor: str,
          reviewer: Internals | None = None) -> dict[str, Any]:
    """The report for an item, proven against a checkpoint that covers all its entries
    (signed now if the latest does not). Runs in the caller's transaction.

    With ``reviewer`` (the server's internals), the reviewer's copy: entries that name an
    internal are withheld whole, leaving their leaf hash and proof (see
    :mod:`evidence.custody.disclosure`), and the item's summary leaves internals out."""
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"item {item_id} does not exist")
    case = session.get_one(Case, item.case_id)
    derivatives = list(session.scalars(
        select(Derivative).where(Derivative.item_id == item.id).order_by(Derivative.kind)))
    if reviewer is not None:
        reviewer = reviewer.with_([item.storage_key, item.upload_id, *(d.key for d in derivatives)])
    ledger.sign_checkpoint(session, keys, actor)
    session.flush()
    checkpoint = _proving_checkpoint(session, item, case)
    entries, withheld = [], []
    for row in item_entries(session, item, case, checkpoint.size):
        proof = [base64.b64encode(p).decode() for p in ledger.inclusion_proof(session, row.seq, checkpoint.size)]
        entry = json.loads(row.body)
        reason = withheld_because(entry, reviewer) if reviewer is not None else None
        if reason is not None:
            withheld.append({"seq": row.seq, "action": row.action, "reason": reason,
                             "leaf_hash": row.leaf_hash.hex(), "proof": proof})
            continue
        entries.append({"seq": row.seq, "entry": entry, "body": row.body.decode(), "leaf_hash": row.leaf_hash.hex(),
                        "proof": proof})
    item_facts: dict[str, Any] = {
        "id": item.id,
        "case": case.ref,
        "exhibit": item.exhibit,
        "description": item.description,
        "filename": item.filename,
        "size": item.size,
        "hashes": dict(item.hashes or {}),
        "client_sha256": item.client_sha256,
        "state": item.state,
        "reason": item.reason,
        "kind": item.kind,
        "media": custody.portable(dict(item.media or {})),
        "warnings": list(item.warnings or []),
        # Fixity audits (evidence.fixity): the flag and its findings; each is a ledger entry too.
        "fixity": {
            "state": item.fixity_state or "unchecked",
            "checked_at": format_time(item.fixity_checked_at) if item.fixity_checked_at else None,
            "failed_at": format_time(item.fixity_failed_at) if item.fixity_failed_at else None,
            "problems": list(item.fixity_problems or []),
        },
    }
    copies = [{"kind": d.kind, "sha256": d.sha256, "size": d.size, "content_type": d.content_type, "method": d.method}
              for d in derivatives]
    if reviewer is not None:
        # Not ledger entries (the report's signature alone covers these): leave internals out.
        item_facts = scrub(item_facts, reviewer)
        copies = scrub(copies, reviewer)
    content: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": format_time(utcnow()),
        "ledger": {"origin": keys.origin, "public_key": keys.signer.verifier_key()},
        # With the witnesses' cosignature lines after the log's signature.
        "checkpoint": cosignatures.cosigned_note(session, checkpoint),
        "tree_size": checkpoint.size,
        "root": base64.b64encode(checkpoint.root).decode(),
        "item": item_facts,
        "derivatives": copies,
        "entries": entries,
    }
    if reviewer is not None:
        content["copy"] = "reviewer"
        content["withheld"] = withheld
    return {**content, "signature": keys.signer.sign(_SIGNED.format(digest=_digest(content)))}


def _proving_checkpoint(session: Session, item: Item, case: Case) -> Checkpoint:
    """The checkpoint the report proves against: the newest that witnesses cosigned, if it
    covers every entry about the item (so the report carries their cosignatures), else the
    latest (just signed, perhaps not cosigned yet)."""
    latest = ledger.latest_checkpoint(session)
    if latest is None:  # pragma: no cover - one was signed just now, in this transaction
        raise RuntimeError("no checkpoint after signing one")
    last = max((row.seq for row in item_entries(session, item, case)), default=-1)
    return cosignatures.latest_cosigned(session, last + 1) or latest


def item_entries(session: Session, item: Item, case: Case, below: int | None = None) -> Iterator[CustodyEvent]:
    """The entries that tell an item's story, in order: its own, and of the case's, its
    creation, this item's upload and the links that cover the item (below ``below``)."""
    query = select(CustodyEvent).where(
        or_(
            CustodyEvent.item_id == item.id,
            (CustodyEvent.case_ref == case.ref) & CustodyEvent.item_id.is_(None),
        )
    )
    if below is not None:
        query = query.where(CustodyEvent.seq < below)
    for row in session.scalars(query.order_by(CustodyEvent.seq)):
        subject = row.subject or {}
        if row.item_id is None and row.action not in _CASE_ACTIONS and subject.get("upload") != item.upload_id \
                and not _shares(row, item.id):
            continue
        yield row


def _shares(row: CustodyEvent, item_id: str) -> bool:
    """A link's case-wide entries (created, revoked, page opened) that cover this item."""
    details = row.details or {}
    return row.action in _LINK_ACTIONS and (item_id in details.get("items", []) or details.get("include_future") is True)


def _digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def to_json(report: dict[str, Any]) -> bytes:
    return canonical(report)


# -- offline verification -------------------------------------------------------------


def verify_report(data: bytes, verifier: NoteVerifier) -> dict[str, Any]:
    """Check a report file (JSON, HTML, PDF or CASE/UCO) against the ledger's public key
    alone; return the report. Raises VerificationError on the first thing wrong."""
    if data.startswith(b"%PDF-"):
        data = _verify_pdf(data, verifier)
    elif data.lstrip().startswith(b"<!DOCTYPE html"):
        data = _verify_html(data, verifier)
    try:
        report = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VerificationError("not a custody report (not its JSON, HTML, PDF or CASE form)") from None
    if isinstance(report, dict) and "@graph" in report:
        return _verify_case(data, report, verifier)
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        raise VerificationError("not a custody report of a known format")
    try:
        if canonical(report) != data:
            raise VerificationError("the report is not byte for byte as it was issued (not canonical JSON)")
    except (TypeError, ValueError) as error:
        raise VerificationError(f"the report holds values a canonical report cannot: {error}") from None
    content = {k: v for k, v in report.items() if k != "signature"}
    signed = open_note(str(report.get("signature", "")), verifier)
    if signed != _SIGNED.format(digest=_digest(content)):
        raise VerificationError("the report's signature does not cover this content")
    checkpoint = ledger.read_checkpoint(report["checkpoint"], verifier, report["ledger"]["origin"])
    if checkpoint.size != report["tree_size"] or base64.b64encode(checkpoint.root).decode() != report["root"]:
        raise VerificationError("the report's tree size or root differs from its signed checkpoint")
    for proven in report["entries"]:
        _verify_entry(proven, checkpoint.size, checkpoint.root)
    for kept_back in report.get("withheld", []):
        _verify_withheld(kept_back, checkpoint.size, checkpoint.root)
    _verify_item_facts(report)
    return report


def verify_cosignatures(report: dict[str, Any], witnesses: Sequence[CosignatureVerifier],
                        quorum: int) -> dict[str, Cosignature]:
    """The valid cosignatures on a verified report's checkpoint by ``witnesses``, at least
    ``quorum``; VerificationError saying how many were valid otherwise."""
    return check_quorum(str(report["checkpoint"]), witnesses, quorum)


def _verify_entry(proven: dict[str, Any], size: int, root: bytes) -> None:
    body = proven["body"].encode()
    entry = Entry.decode(body)
    if entry.seq != proven["seq"] or json.loads(body) != proven["entry"]:
        raise VerificationError(f"entry {proven['seq']}: the readable copy differs from the signed body")
    leaf = merkle.leaf_hash(body)
    if leaf.hex() != proven["leaf_hash"]:
        raise VerificationError(f"entry {proven['seq']}: leaf hash does not match its body")
    proof = [base64.b64decode(p, validate=True) for p in proven["proof"]]
    try:
        verify_inclusion(entry.seq, size, leaf, proof, root)
    except VerificationError as error:
        raise VerificationError(f"entry {entry.seq} is not in the signed ledger: {error}") from None


def _verify_withheld(kept_back: dict[str, Any], size: int, root: bytes) -> None:
    """A withheld entry cannot be read, but its leaf is proven to sit at its place in the log."""
    seq = kept_back["seq"]
    try:
        leaf = bytes.fromhex(kept_back["leaf_hash"])
        proof = [base64.b64decode(p, validate=True) for p in kept_back["proof"]]
    except (TypeError, ValueError):
        raise VerificationError(f"withheld entry {seq}: its leaf hash or proof is damaged") from None
    if type(seq) is not int or len(leaf) != 32:
        raise VerificationError(f"withheld entry {seq}: not a sequence number and leaf hash")
    try:
        verify_inclusion(seq, size, leaf, proof, root)
    except VerificationError as error:
        raise VerificationError(f"withheld entry {seq} is not in the signed ledger: {error}") from None


def _verify_item_facts(report: dict[str, Any]) -> None:
    """The readable summary must say what the proven entries say."""
    item = report["item"]
    for proven in report["entries"]:
        entry = proven["entry"]
        details = entry["details"]
        if entry["subject"].get("item") not in (None, item["id"]):
            raise VerificationError(f"entry {entry['seq']} is about another item")
        if entry["action"] == Action.ORIGINAL_HASHED and details.get("hashes") != item["hashes"]:
            raise VerificationError("the item's hashes differ from those the ledger recorded")
        if entry["action"] == Action.DERIVATIVE_CREATED:
            made = {(d["kind"], d["sha256"]) for d in report["derivatives"]}
            if (details.get("kind"), details.get("sha256")) not in made:
                raise VerificationError(f"working copy {details.get('kind')} differs from the ledger's record")


def _verify_html(data: bytes, verifier: NoteVerifier) -> bytes:
    """The embedded JSON report, once the signature over every byte of the page checks."""
    cut = data.rfind(HTML_SIGNATURE_PREFIX.encode())
    if cut < 0:
        raise VerificationError("the HTML report carries no signature")
    page, trailer = data[:cut], data[cut + len(HTML_SIGNATURE_PREFIX) :]
    if not trailer.endswith(b" -->\n"):
        raise VerificationError("the HTML report's signature line is damaged or not last")
    try:
        note = base64.b64decode(trailer[: -len(b" -->\n")], validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise VerificationError("the HTML report's signature is not readable") from None
    _signed_bytes(page, note, verifier, "HTML report")
    start = page.find(b'<script type="application/json" id="custody-report">')
    end = page.find(b"</script>", start)
    if start < 0 or end < 0:
        raise VerificationError("the HTML report does not embed its JSON form")
    return embedded_json(page[start + len(b'<script type="application/json" id="custody-report">') : end])


def _signed_bytes(data: bytes, note: str, verifier: NoteVerifier, what: str) -> None:
    if open_note(note, verifier) != _SIGNED.format(digest=hashlib.sha256(data).hexdigest()):
        raise VerificationError(f"the {what} was changed after it was signed")


def _verify_pdf(data: bytes, verifier: NoteVerifier) -> bytes:
    """The attached JSON report, once the signature over every byte of the PDF checks."""
    try:
        pdf, encoded = report_pdf.split(data)
        note = base64.b64decode(encoded, validate=True).decode()
    except report_pdf.PdfError as error:
        raise VerificationError(str(error)) from None
    except (ValueError, UnicodeDecodeError):
        raise VerificationError("the PDF report's signature is not readable") from None
    _signed_bytes(pdf, note, verifier, "PDF report")
    try:
        return report_pdf.attached_json(pdf)
    except report_pdf.PdfError as error:
        raise VerificationError(str(error)) from None


def sign_pdf(pdf: bytes, keys: ledger.Keys) -> bytes:
    note = keys.signer.sign(_SIGNED.format(digest=hashlib.sha256(pdf).hexdigest()))
    return pdf + report_pdf.signature_line(base64.b64encode(note.encode()))


# The CASE/UCO document carries the signed JSON report (so every entry's proof can be checked)
# and a signature over the rest of the document as written; neither key is in the JSON-LD
# context, so JSON-LD processors (and case_validate) leave them out of the graph.
CASE_REPORT, CASE_SIGNATURE = "custodyReport", "custodyReportSignature"


def _case_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def sign_case(report: dict[str, Any], keys: ledger.Keys) -> bytes:
    document = {**to_case(report), CASE_REPORT: report}
    note = keys.signer.sign(_SIGNED.format(digest=hashlib.sha256(_case_bytes(document)).hexdigest()))
    return _case_bytes({**document, CASE_SIGNATURE: note})


def _verify_case(data: bytes, document: dict[str, Any], verifier: NoteVerifier) -> dict[str, Any]:
    """The CASE/UCO export: written exactly as issued, signed, its report verified, and its
    graph exactly what that report gives."""
    if _case_bytes(document) != data:
        raise VerificationError("the CASE report is not byte for byte as it was issued")
    note, report = document.pop(CASE_SIGNATURE, None), document.get(CASE_REPORT)
    if not isinstance(note, str) or not isinstance(report, dict):
        raise VerificationError("the CASE report carries no signature or no custody report")
    _signed_bytes(_case_bytes(document), note, verifier, "CASE report")
    checked = verify_report(canonical(report), verifier)
    if {k: v for k, v in document.items() if k != CASE_REPORT} != to_case(checked):
        raise VerificationError("the CASE graph differs from the custody report it carries")
    return checked


def sign_html(page: str, keys: ledger.Keys) -> bytes:
    data = page.encode()
    note = keys.signer.sign(_SIGNED.format(digest=hashlib.sha256(data).hexdigest()))
    return data + f"{HTML_SIGNATURE_PREFIX}{base64.b64encode(note.encode()).decode()} -->\n".encode()


FORMATS = {"json": "application/json", "html": "text/html; charset=utf-8", "case": "application/ld+json",
           "pdf": "application/pdf"}


def export(session: Session, keys: ledger.Keys, item_id: str, fmt: str, actor: str, *,
           reviewer: Internals | None = None, record: bool = True, note: dict[str, Any] | None = None,
           link: str | None = None) -> bytes:
    """The report in ``fmt`` (the reviewer's copy with ``reviewer``), with its export
    recorded in the ledger (after the entries it proves, so the file's own export is in the
    next report) unless ``record`` is false: the caller has already counted this export
    into a window that the ledger tells of (:mod:`evidence.links.record`). ``note`` adds to
    the entry's details; ``link`` names the link it was served through."""
    if fmt not in FORMATS:
        raise InvalidInput(f"report format must be one of {', '.join(FORMATS)}")
    report = build(session, keys, item_id, actor, reviewer)
    if fmt == "json":
        data = to_json(report)
    elif fmt == "html":
        data = sign_html(render(report), keys)
    elif fmt == "pdf":
        data = sign_pdf(report_pdf.to_pdf(report), keys)
    else:
        data = sign_case(report, keys)
    if record:
        details = {"format": fmt, "sha256": hashlib.sha256(data).hexdigest(), "tree_size": report["tree_size"]}
        if reviewer is not None:
            details["copy"] = "reviewer"
        subject = {"case": report["item"]["case"], "item": item_id, **({"link": link} if link else {})}
        custody.record(session, Action.REPORT_EXPORTED, subject, actor, {**details, **(note or {})})
    return data
