"""A custody report's entries in the words of a continuity statement: one line per event, saying
who did what, when, from where and with what outcome ("Viewed by reviewer@cps.gov.uk",
"Refused: link revoked"), and the machine detail kept apart for the appendix.

Pure: it reads the report dict that `evidence.custody.report` builds and nothing else. What it
shows carries no server internals, whatever older entries hold: an operator on the server host
is "service account" (its OS user name is not shown), a component's host name is dropped, and
absolute paths, storage keys and user@host names inside details are replaced. The entries
themselves stay byte for byte in the machine-readable report that the statement embeds, since
their inclusion proofs are over those bytes.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evidence.custody.actions import Action
from evidence.custody.disclosure import INTERNAL_FIELDS

SERVICE_ACCOUNT = "service account"
_COMPONENTS = {"transfer": "the upload service", "worker": "the processing service", "api": "the web service"}
# An absolute path (two or more segments), a storage key, a name@host with no dot in the host
# (an OS account on a machine, unlike an e-mail address).
_INTERNAL = re.compile(r"(?<![\w.])/(?:[\w.+%@-]+/)+[\w.+%@-]*"
                       r"|\b(?:originals|derivatives|uploads)/[\w./%-]+"
                       r"|\b[\w.+-]+@[A-Za-z0-9-]+(?![\w.@-])")
_ACTOR = re.compile(r"(user|system|operator|link):")
_REFUSALS = {
    "revoked": "link revoked", "expired": "link expired", "locked after wrong passcodes": "link locked after wrong"
    " passcodes", "uses exhausted": "the link's uses were all spent", "token does not match the link's scope":
    "link altered or out of date", "too many attempts": "too many attempts",
}


@dataclass(frozen=True)
class Line:
    """One event of the statement. ``outcome`` is empty where the event itself is the outcome."""

    seq: int
    when: str
    event: str
    where_from: str
    outcome: str


def when(time: str) -> str:
    """``2026-11-30T10:00:01.123456Z`` as ``2026-11-30 10:00:01``: seconds are what a reader checks."""
    return time[:19].replace("T", " ")


def redact(text: str) -> str:
    return _INTERNAL.sub("(server detail)", text)


def who(actor: str) -> str:
    """The actor in words: a person's e-mail address, a link's recipient, or which service."""
    kind, _, rest = actor.partition(":")
    if kind == "user":
        return redact(rest)
    if kind == "link":  # "link:<id> (<recipient>)"
        recipient = rest.partition(" (")[2].rstrip(")")
        return redact(recipient) or "the link's holder"
    if kind == "operator":
        return SERVICE_ACCOUNT
    if kind == "system":
        component = rest.split("@", 1)[0]
        return _COMPONENTS.get(component, f"the {component} service")
    return redact(actor)


def lines(report: dict[str, Any]) -> list[Line]:
    return [line(proven["entry"]) for proven in report["entries"]]


def line(entry: dict[str, Any]) -> Line:
    details = entry.get("details") or {}
    by = who(str(entry.get("actor", "")))
    words = _WORDS.get(entry["action"], _plain)
    event, outcome = words(entry, details, by)
    where = details.get("client_ip") or details.get("ip") or ""
    return Line(entry["seq"], when(str(entry["time"])), event, str(where), outcome)


# What each kind of working copy is, in the words a reader knows (the kinds are DerivativeKind's).
_COPY_KINDS = {
    "proxy": "browser-playable video", "poster": "poster frame", "contact_sheet": "contact sheet",
    "hls": "segmented video stream", "probe": "technical description", "thumbnail": "thumbnail",
    "manifest": "list of the archive's contents", "view": "screen-size image", "audio": "browser-playable audio",
    "text": "text", "pages": "page images", "previews": "previews of the archive's contents",
}


def copy_kind(kind: str) -> str:
    """``contact_sheet`` as ``contact sheet``, ``hls`` as ``segmented video stream``; a kind not known
    here with its underscores as spaces; any other value exactly as recorded."""
    if kind in _COPY_KINDS:
        return _COPY_KINDS[kind]
    return kind.replace("_", " ") if re.fullmatch(r"[a-z_]+", kind) else kind


def label(action: str) -> str:
    """The words for a recorded action; an action no longer known is shown as recorded."""
    try:
        return Action(action).label
    except ValueError:
        return action


# -- the words for each action --------------------------------------------------------------

_Words = Callable[[dict[str, Any], dict[str, Any], str], tuple[str, str]]


def _plain(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    return f"{label(entry['action'])} by {by}", ""


def _bytes(count: Any) -> str:
    return f"{count:,} bytes" if isinstance(count, int) else "size not recorded"


def _case(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    return f"Case {entry['subject'].get('case', '')} opened by {by}", ""


def _upload(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    if entry["action"] == Action.UPLOAD_CREATED:
        return f"Upload of {redact(str(details.get('filename')))} ({_bytes(details.get('size'))}) started by {by}", ""
    return f"Upload received in full ({_bytes(details.get('size'))}) from {by}", ""


def _stored(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    sender = details.get("received_from")
    received = f", received from {who(sender)}" if isinstance(sender, str) and _ACTOR.match(sender) else ""
    return f"Original stored write-once by {by}{received}", ""


def _hashed(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    names = ", ".join(name.upper().replace("SHA", "SHA-") for name in sorted(details.get("hashes") or {}))
    return f"Original hashed as stored ({names}) by {by}", ""


def _compared(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    matched = entry["action"] == Action.INTEGRITY_VERIFIED
    return f"SHA-256 as stored compared with the officer's by {by}", "Matches" if matched else "DIFFERS"


def _copy(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    kind = copy_kind(str(details.get("kind", "")))
    return f"Working copy made: {kind}, {_bytes(details.get('size'))}, by {by}", ""


def _failed(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    return f"Processing stopped by {by}: {redact(str(details.get('reason', '')))}", "Failed"


def _shared(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    allows = "view and download" if details.get("permission") == "download" else "view only"
    extras = [allows, *(["passcode"] if details.get("passcode") else [])]
    if details.get("expires_at"):
        extras.append(f"expires {str(details['expires_at'])[:10]}")
    return f"Shared by link with {redact(str(details.get('to', '')))} ({', '.join(extras)}) by {by}", ""


def _revoked(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    return f"Link revoked by {by}", "Link stops working"


def _exported(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    copy = ", reviewer's copy" if details.get("copy") == "reviewer" else ""
    return f"Custody report exported ({str(details.get('format', '')).upper()}{copy}) by {by}", ""


def _cosigned(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    witness = redact(str(details.get("witness", "")))
    return (f"Ledger checkpoint of {details.get('size')} entries cosigned by witness {witness}"
            f" at {when(str(details.get('cosigned_at', '')))} (asked by {by})", "Cosigned")


def _accessed(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    if details.get("outcome") == "denied":
        return _refused(details, by)
    kind, many = details.get("kind"), _requests(details)
    if kind == "passcode":
        return f"Passcode entered by {by}", "Accepted"
    if kind == "download":
        return f"Download of the original, {_served(details)}{many}, by {by}", "Allowed"
    if kind == "view":
        copy = f" (working copy: {copy_kind(details['copy'])})" if isinstance(details.get("copy"), str) else " (a working copy)"
        return f"Viewed by {by}{copy}{many}", "Allowed"
    return f"Viewed by {by} (the reviewer's page){many}", "Allowed"


def access_label(details: dict[str, Any]) -> str:
    """A link's use in a few words, outcome first: what a timeline shows instead of "Link used"."""
    if details.get("outcome") == "denied":
        return _refused(details, "")[1]
    return {"passcode": "Passcode accepted", "download": "Original downloaded through the link",
            "view": "Working copy viewed through the link"}.get(str(details.get("kind")),
                                                                "Reviewer's page opened through the link")


def _refused(details: dict[str, Any], by: str) -> tuple[str, str]:
    reason = str(details.get("reason", ""))
    words = _REFUSALS.get(reason, redact(reason))
    if reason == "wrong passcode" and details.get("attempt"):
        words += f" (attempt {details['attempt']}{', link locked' if details.get('locked') else ''})"
    requests = details.get("requests")
    asked = f"{requests} requests" if isinstance(requests, int) and requests > 1 else "Request"
    return f"{asked} through the link sent to {by}{_span(details)}", f"Refused: {words}"


def _requests(details: dict[str, Any]) -> str:
    """For a window's summary entry: how many requests, between when and when."""
    if not details.get("summary"):
        return ""
    return f": {details.get('requests')} requests{_span(details)}"


def _span(details: dict[str, Any]) -> str:
    first, last = details.get("first_at"), details.get("last_at")
    if isinstance(first, str) and isinstance(last, str):
        return f", {when(first)[11:]}–{when(last)[11:]}"
    return ""


def _served(details: dict[str, Any]) -> str:
    whole = "(whole file)" if details.get("whole_file") else "(part of the file)"
    sent = details.get("range")
    if isinstance(sent, dict):
        return f"bytes {sent.get('first', 0):,}–{sent.get('last', 0):,} {whole}"
    if isinstance(details.get("bytes_covered"), int):
        return f"{details['bytes_covered']:,} bytes covered {whole}"
    return "bytes not recorded"


def _outcome(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    event = {"nfa": "no further action", "charged": "charged", "convicted": "convicted", "acquitted": "acquitted",
             "appeal-open": "appeal opened", "appeal-closed": "appeal determined"}.get(str(details.get("event")),
                                                                                      redact(str(details.get("event"))))
    release = f", release {details['release_on']}" if details.get("event") == "convicted" and details.get("release_on") else ""
    review = details.get("review_on")
    return (f"Case outcome recorded by {by}: {event} on {details.get('on')}{release}",
            f"Review date {review}" if review else "Kept: no review date")


def _held(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    case = entry["subject"].get("case", "")
    if entry["action"] == Action.CASE_HELD:
        return f"Legal hold placed on case {case} by {by}: {redact(str(details.get('reason', '')))}", "Disposal blocked"
    return f"Legal hold on case {case} released by {by}", "Disposal possible after review"


def _proposed(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    return f"Disposal proposed by {by}: {redact(str(details.get('reason', '')))}", "Awaits another admin's approval"


def _disposed(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    proposer = details.get("proposed_by")
    proposed = f", proposed by {who(proposer)}" if isinstance(proposer, str) else ""
    original = f"original of {_bytes(details.get('size'))}, SHA-256 {details.get('sha256')}"
    if details.get("completes"):  # the original the storage kept at the disposal, removed later
        approver = details.get("approved_by")
        approved = f" approved by {who(approver)}{proposed}" if isinstance(approver, str) else ""
        return (f"Original removed by {by}, completing the disposal{approved} "
                f"({redact(str(details.get('reason', '')))}): {original}", "Original removed")
    copies = details.get("working_copies")
    count = len(copies) if isinstance(copies, list) else 0
    event = (f"Disposal approved by {by}{proposed} ({redact(str(details.get('reason', '')))}): {original}; "
             f"{count} working cop{'y' if count == 1 else 'ies'} removed")
    if details.get("original_removed"):
        return event, "Original removed"
    until = details.get("original_kept_until")
    return event, f"Original still stored{f' until {str(until)[:10]}' if until else ''}; not served"


def _fixity_checked(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    objects = _dict(details.get("objects"))
    counted = [f"{objects.get(name)} {words}" for name, words in (("originals", "originals"), ("working_copies",
               "working copies"), ("parts", "parts of working copies")) if isinstance(objects.get(name), int)]
    how = "scheduled fixity audit" if details.get("trigger") == "schedule" else "fixity audit"
    what = f": {', '.join(counted)}, {_bytes(details.get('bytes'))}" if counted else ""
    failed = objects.get("failed")
    outcome = f"{failed} DIFFER, missing or not write-once" if isinstance(failed, int) and failed else "All match"
    return f"Stored objects re-read and re-hashed by {by} ({how}){what}", outcome


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


_FIXITY_OUTCOMES = {"differs": "DIFFERS", "missing": "MISSING", "unreadable": "Could not be read",
                    "not write-once": "No longer write-once", "retention shorter than policy": "Retention too short"}


def _fixity_failed(entry: dict[str, Any], details: dict[str, Any], by: str) -> tuple[str, str]:
    what = "the original" if details.get("object") == "original" else \
        f"a working copy ({copy_kind(str(details.get('kind', '')))})"
    if details.get("part"):
        what += f", one of its parts ({redact(str(details['part']))})"
    problem = str(details.get("problem", ""))
    expected, found = _dict(details.get("expected")), _dict(details.get("found"))
    if problem == "differs":
        compared = f": SHA-256 recorded {expected.get('sha256')}, found {found.get('sha256')}"
    elif problem == "missing":
        compared = ": nothing is stored any more"
    else:
        compared = f" ({problem})"
    return f"Fixity audit by {by}: {what} re-read{compared}", _FIXITY_OUTCOMES.get(problem, redact(problem) or "Failed")


_WORDS: dict[str, _Words] = {
    Action.CASE_CREATED: _case, Action.UPLOAD_CREATED: _upload, Action.UPLOAD_COMPLETED: _upload,
    Action.ORIGINAL_STORED: _stored, Action.ORIGINAL_HASHED: _hashed, Action.INTEGRITY_VERIFIED: _compared,
    Action.INTEGRITY_MISMATCH: _compared, Action.DERIVATIVE_CREATED: _copy, Action.ITEM_FAILED: _failed,
    Action.LINK_CREATED: _shared, Action.LINK_REVOKED: _revoked, Action.LINK_ACCESSED: _accessed,
    Action.REPORT_EXPORTED: _exported, Action.FIXITY_CHECKED: _fixity_checked, Action.FIXITY_FAILED: _fixity_failed,
    Action.CASE_OUTCOME: _outcome, Action.CASE_HELD: _held, Action.CASE_RELEASED: _held,
    Action.DISPOSAL_PROPOSED: _proposed, Action.ITEM_DISPOSED: _disposed,
}

# The witnesses' cosignatures of checkpoints (evidence.witness.cosign).
_WORDS[Action.CHECKPOINT_COSIGNED] = _cosigned


# -- machine detail, for the appendix ---------------------------------------------------------


def detail_lines(details: Any, prefix: str = "") -> list[str]:
    """An entry's details as ``name: value`` lines, a command line as one shell-quoted line,
    internals left out (fields that name storage) or replaced (paths, hosts in values)."""
    if not isinstance(details, dict):
        return [f"{prefix or 'value'}: {redact(str(details))}"]
    found = []
    for name in sorted(details):
        if name in INTERNAL_FIELDS:
            continue
        value, path = details[name], f"{prefix}{name}"
        if isinstance(value, dict):
            found += detail_lines(value, f"{path}.")
        elif name == "argv" and isinstance(value, list):
            found.append(f"{path}: {redact(shlex.join(str(arg) for arg in value))}")
        elif isinstance(value, str) and _ACTOR.match(value):
            found.append(f"{path}: {who(value)}")
        else:
            found.append(f"{path}: {redact(value if isinstance(value, str) else _json(value))}")
    return found


def _json(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_json(v) for v in value) or "none"
    if value is None:
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def command(method: dict[str, Any]) -> str:
    """How a working copy was made, in one line: the tool, its version and its command line."""
    tool = f"{method.get('tool', 'unknown tool')} {method.get('version', '')}".strip()
    rest = [line for line in detail_lines({k: v for k, v in method.items() if k not in ("tool", "version")})]
    return "; ".join([tool, *rest])
