"""The gate every reviewer request passes: token, rate, row, item, use; and the record of it.

Order matters. The token's signature is checked first, with no database access, so
forged or guessed URLs cost nothing and learn nothing. Then the request rate of this
client on this link (429, in memory: a refusal costs no write). Then the row decides
(revoked, expired, locked: 410; a token that no longer matches what the link shares: 404),
the item must be one the link covers (else 404), and a client without a view session
spends one use of the link, unless it already spent one in the last session length.

What the gate lets through or refuses is recorded per link, client and kind of access in
windows (:mod:`evidence.link_record`): one ledger entry for the first request of a window,
one summary when it closes if more followed. HEAD requests (mail scanners prefetching a
link) spend no use and record nothing.

What a request costs the database (a player's Range requests come by the hundred): a client
without a view session gets a fresh read of everything in one joined query, plus the writes
of its new session. A client with one reads the link, its case, the item and the working copy
asked for in one joined query, or takes them from a copy this process read less than
``fresh_seconds`` (1 s) ago: so a revoked, locked or re-scoped link stops every view session
on every node within that long (expiry is checked against the clock on every request). Its
access is counted in memory after the first of its window (:mod:`evidence.links.pending`)
and written every couple of seconds.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import hmac
import logging
import math
import secrets
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from evidence import custody
from evidence.custody.actions import Action
from evidence.links import record as link_record
from evidence.links.pending import Pending, RowKey
from evidence.links.ratelimit import RateLimiter
from evidence.links.sharing import check_passcode, covers, link_actor, link_scope_hash
from evidence.links.tokens import LINK_ID, Claims, InvalidToken, KeyRing
from evidence.links.window import PAGE, PASSCODE, Range, clean, denied_key, item_key, viewer_of, window_of
from evidence.models import Case, Derivative, Item, Link
from evidence.runtime import Runtime

log = logging.getLogger(__name__)
K = TypeVar("K")
V = TypeVar("V")

COOKIE = "evidence_link"
_MAX_COOKIE = 512
# How stale a view session's copy of its link may be (revocation, lock, scope), and how
# often counts held in memory are written: well under the grace after which a window's
# summary is written (evidence.links.record.SUMMARY_GRACE_SECONDS), and what a crash may
# lose of a summary's counts.
FRESH_SECONDS = 1.0
# Passcode tries that may come one straight after another before the per-link pace applies.
PASSCODE_BURST = 3
FLUSH_SECONDS = 2.0
# A copy in use is read again once this share of FRESH_SECONDS has passed, so the new one
# is in before the old one ends, even on a busy machine (a read a quarter second: nothing).
_RENEW_AFTER = 0.25
# Links (with item and copy) kept fresh in memory per process; a copy pushed out early
# only costs a read.
_MAX_FRESH = 10_000


class Denied(Exception):
    """Refused; ``status`` 404 or 410 show the same plain pages whatever the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class PasscodeRequired(Exception):
    pass


class TooMany(Exception):
    """This client is asking too fast on this link: 429, and when to try again."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many requests")
        self.retry_after = max(1, math.ceil(retry_after))


@dataclass(frozen=True)
class Client:
    """Who is asking, as the request says: the address (behind a proxy, the forwarded one
    the server trusts), the user agent (cleaned and cut), the view-session cookie."""

    ip: str
    agent: str
    cookie: str | None

    @classmethod
    def of(cls, ip: str, agent: str, cookie: str | None) -> Client:
        return cls(clean(ip, 64), clean(agent), cookie[:_MAX_COOKIE] if cookie else None)

    @property
    def viewer(self) -> str:
        return viewer_of(self.ip)


@dataclass
class Access:
    link: Link
    case_ref: str
    session: str  # the view session: the cookie's, or one just started ("" for a HEAD)
    new_cookie: str | None = None
    item: Item | None = None
    copy: Derivative | None = None  # the working copy asked for, if the link covers its item and it exists
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Read:
    """What one joined query found: the rows are detached and only read from then on."""

    link: Link
    case_ref: str
    item: Item | None
    copy: Derivative | None
    at: datetime


class _UsedUp(Exception):
    pass


class Gate:
    def __init__(self, rt: Runtime, keys: KeyRing, cookie_secret: bytes, clock: Callable[[], datetime],
                 fresh_seconds: float = FRESH_SECONDS, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.rt, self.keys, self._secret, self.clock = rt, keys, cookie_secret, clock
        self.fresh_seconds, self.flush_seconds = fresh_seconds, flush_seconds
        self._fresh: OrderedDict[tuple[str, str | None, str | None], _Read] = OrderedDict()
        self._tokens: OrderedDict[str, tuple[Claims, datetime]] = OrderedDict()
        self._fresh_lock = threading.Lock()
        # Reads being renewed ahead of their end (admit_quickly), one each at a time.
        self._renewing: set[tuple[str, str | None, str | None]] = set()
        self._pending = Pending()
        self._flusher: threading.Thread | None = None
        self._flusher_lock = threading.Lock()
        self._stopping = threading.Event()
        self.settings = settings = rt.settings
        # Players seek with bursts of Range requests: a whole minute's allowance may come at once.
        self._requests = RateLimiter(settings.link_requests_per_minute, 60.0)
        interval = settings.link_passcode_interval_seconds
        # A few quick tries pass (a person who mistypes, then types it right, gets in at once);
        # after them, one a second per link. The link still locks after link_passcode_attempts.
        self._passcodes = RateLimiter(1, interval, burst=PASSCODE_BURST) if interval > 0 else None

    # -- the view-session cookie ------------------------------------------------------------

    def _cookie(self, link_id: str, session: str, passcode_ok: bool, now: datetime) -> str:
        until = int((now + timedelta(minutes=self.settings.link_session_minutes)).timestamp())
        body = f"{link_id}:{session}:{int(passcode_ok)}:{until}".encode()
        mac = hmac.new(self._secret, body, hashlib.sha256).digest()
        return f"{base64.urlsafe_b64encode(body).decode()}.{base64.urlsafe_b64encode(mac).decode()}"

    def _read_cookie(self, value: str | None, link_id: str, now: datetime) -> tuple[str, bool] | None:
        try:
            body_b64, mac_b64 = (value or "").split(".")
            body = base64.urlsafe_b64decode(body_b64)
            expected = hmac.new(self._secret, body, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, base64.urlsafe_b64decode(mac_b64)):
                return None
            cookie_link, session, passcode_ok, until = body.decode().split(":")
        except (ValueError, UnicodeDecodeError):
            return None
        if cookie_link != link_id or int(until) <= now.timestamp():
            return None
        return session, passcode_ok == "1"

    # -- checks ---------------------------------------------------------------------------

    def _claims(self, token: str, now: datetime) -> Claims:
        """The token's claims. A genuine token is remembered for ``fresh_seconds``, so a
        player's burst of requests verifies its signature once (a retired signing key, like
        a revocation, is seen within that bound); a forged one is checked every time."""
        with self._fresh_lock:
            kept = self._tokens.get(token)
        if kept is not None and self._still_fresh(kept[1], now):
            return kept[0]
        try:
            claims = self.keys.verify(token, now)
        except InvalidToken:
            raise Denied(404, "invalid token") from None
        with self._fresh_lock:
            _keep(self._tokens, token, (claims, now))
        return claims

    def _still_fresh(self, read_at: datetime, now: datetime) -> bool:
        # A clock stepped back does not stretch the bound.
        return timedelta(0) <= now - read_at < timedelta(seconds=self.fresh_seconds)

    def _pace(self, claims: Claims, client: Client, now: datetime) -> None:
        wait = self._requests.wait((claims.link_id, client.viewer), now.timestamp())
        if wait:
            raise TooMany(wait)

    def check(self, token: str, client: Client, item_id: str | None = None, download: bool = False,
              head: bool = False, copy: str | None = None) -> Access:
        """Admit a request or raise Denied / PasscodeRequired / TooMany. A GET from a client
        without a view session starts one, which spends a use of the link unless this
        client spent one within the session length; a HEAD never does. ``copy``: the kind
        of working copy of the item asked for, found in the same read (``Access.copy``)."""
        now = self.clock()
        claims = self._claims(token, now)  # before any database access
        self._pace(claims, client, now)
        # An item id that is not one of ours is never looked up: refused below as not covered.
        wanted = item_id if item_id is not None and LINK_ID.fullmatch(item_id) else None
        viewing = self._read_cookie(client.cookie, claims.link_id, now)
        read = self._read(claims.link_id, wanted, copy if wanted else None, now, may_reuse=viewing is not None)
        if read is None:
            raise Denied(404, "no such link")
        link = read.link
        access = Access(link, read.case_ref, "")
        refusal = self._refusal(link, claims, now)
        if refusal is None and link.passcode_hash is not None and not (viewing and viewing[1]):
            raise PasscodeRequired()
        if refusal is None and item_id is not None:
            if wanted is None or read.item is None or not covers(link, read.item):
                refusal = (404, "item not covered by the link")
            else:
                access.item, access.copy = read.item, read.copy
                if download and link.permission != "download":
                    refusal = (404, "download not permitted")
        if refusal is None and viewing is None:
            # Only reads here: refusals and uses are written after this session ends (on
            # SQLite, an open session holds the write lock that they need).
            with self.rt.db.sessions() as session:
                if self._used_up(session, link, client, now):
                    refusal = (410, "uses exhausted")
        if refusal is not None:
            self._deny(access, client, *refusal, head=head)
        if viewing is not None:
            access.session = viewing[0]
        elif not head:  # a HEAD is answered without a session: no use, no cookie
            self._start_session(access, client, now, passcode_ok=False)
        return access

    def admit_quickly(self, token: str, client: Client, item_id: str, copy: str) -> Access | None:
        """:meth:`check` for a view session's GET of a working copy, when this process verified
        the token and read the link, item and copy less than ``fresh_seconds`` ago: the same
        checks and the same rate, with no database access and no signature to verify, so an
        async route may call it on the event loop. None, with nothing counted, when anything
        needs more (no session, nothing fresh, a refusal to record, a passcode still owed):
        then :meth:`check` decides, from the start. Raises TooMany as :meth:`check` does."""
        now = self.clock()
        with self._fresh_lock:
            kept = self._tokens.get(token)
            read = self._fresh.get((kept[0].link_id, item_id, copy)) if kept else None
        if kept is None or read is None or not (self._still_fresh(kept[1], now) and self._still_fresh(read.at, now)):
            return None
        claims, link = kept[0], read.link
        if now - min(kept[1], read.at) >= timedelta(seconds=self.fresh_seconds * _RENEW_AFTER):
            self._renew(token, claims.link_id, item_id, copy)
        viewing = self._read_cookie(client.cookie, claims.link_id, now)
        if viewing is None or (link.passcode_hash is not None and not viewing[1]):
            return None
        if self._refusal(link, claims, now) is not None or read.item is None or not covers(link, read.item):
            return None
        self._pace(claims, client, now)
        return Access(link, read.case_ref, viewing[0], item=read.item, copy=read.copy)

    def forget(self, link_id: str) -> None:
        """Drop this process's reads of a link, after it was changed here (revoked): its next
        request, from this process, reads it again. Other processes see the change within
        ``fresh_seconds``."""
        with self._fresh_lock:
            for key in [key for key in self._fresh if key[0] == link_id]:
                del self._fresh[key]

    def _renew(self, token: str, link_id: str, item_id: str, copy: str) -> None:
        """Verify the token and read the link, item and copy again, in a thread of their own,
        while the copies in memory still hold: otherwise, at the end of each ``fresh_seconds``,
        every request in flight would find them stale at once and read the database itself.
        The bound is unchanged: a read is used for ``fresh_seconds`` from when it was made."""
        key = (link_id, item_id, copy)
        with self._fresh_lock:
            if key in self._renewing:
                return
            self._renewing.add(key)

        def renew() -> None:
            try:
                now = self.clock()
                claims = self.keys.verify(token, now)
                with self._fresh_lock:
                    _keep(self._tokens, token, (claims, now))
                self._read(link_id, item_id, copy, now, may_reuse=False)
            except InvalidToken:
                pass  # a retired key: the copy in memory ends within fresh_seconds, then check() refuses
            except Exception as error:  # the database down: requests read it themselves, and say so
                log.warning("link read not renewed: %s", type(error).__name__)
            finally:
                with self._fresh_lock:
                    self._renewing.discard(key)

        threading.Thread(target=renew, name="link-read-renew", daemon=True).start()

    def _read(self, link_id: str, item_id: str | None, copy: str | None, now: datetime, may_reuse: bool) -> _Read | None:
        """The link, its case's reference, the item (of the link's case) and the working copy,
        in one query; or, for a view session, as this process read them less than
        ``fresh_seconds`` ago. Only what admits a request is kept: a link not found or an
        item not covered is read again every time."""
        key = (link_id, item_id, copy)
        if may_reuse:
            with self._fresh_lock:
                kept = self._fresh.get(key)
            if kept is not None and self._still_fresh(kept.at, now):
                return kept
        columns: list[Any] = [Link, Case.ref, *([Item] if item_id else []), *([Derivative] if item_id and copy else [])]
        query = select(*columns).join(Case, Case.id == Link.case_id).where(Link.id == link_id)
        if item_id is not None:
            query = query.outerjoin(Item, and_(Item.id == item_id, Item.case_id == Link.case_id))
            if copy is not None:
                query = query.outerjoin(Derivative, and_(Derivative.item_id == Item.id, Derivative.kind == copy))
        with self.rt.db.sessions() as session:
            row = session.execute(query).one_or_none()
        if row is None:
            return None
        item = row[2] if item_id is not None else None
        read = _Read(row[0], row[1], item, row[3] if item_id is not None and copy is not None else None, now)
        if item_id is None or (item is not None and covers(read.link, item)):
            with self._fresh_lock:
                _keep(self._fresh, key, read)
        return read

    @staticmethod
    def _refusal(link: Link, claims: Claims, now: datetime) -> tuple[int, str] | None:
        if link_scope_hash(link) != claims.scope_hash:
            return 404, "token does not match the link's scope"
        if link.revoked_at is not None:
            return 410, "revoked"
        if now >= link.expires_at:
            return 410, "expired"
        if link.locked_at is not None:
            return 410, "locked after wrong passcodes"
        return None

    def _since(self, now: datetime) -> datetime:
        return now - timedelta(minutes=self.settings.link_session_minutes)

    def _used_up(self, session: Session, link: Link, client: Client, now: datetime) -> bool:
        return link.max_uses is not None and link.uses >= link.max_uses and \
            not link_record.has_use(session, link.id, client.viewer, self._since(now))

    def _start_session(self, access: Access, client: Client, now: datetime, passcode_ok: bool) -> None:
        """A new view session (cookie). It spends a use unless this client spent one within
        the session length: dropping the cookie does not burn the link's uses."""
        link = access.link
        try:
            with self.rt.db.transaction() as session:
                if not link_record.has_use(session, link.id, client.viewer, self._since(now)) and \
                        link_record.claim_use(session, link.id, client.viewer,
                                              window_of(now, self.settings.link_session_minutes * 60), now, client.agent):
                    # Atomic, so two reviewers opening the last use at once cannot both get it.
                    spent = link_record.affected(session.execute(
                        update(Link).where(Link.id == link.id, or_(Link.max_uses.is_(None), Link.uses < Link.max_uses))
                        .values(uses=Link.uses + 1)
                    ))
                    if not spent:
                        raise _UsedUp()  # rolls the claimed use back
        except _UsedUp:
            self._deny(access, client, 410, "uses exhausted")
        access.session = secrets.token_hex(16)
        access.new_cookie = self._cookie(link.id, access.session, passcode_ok, now)

    def _deny(self, access: Access, client: Client, status: int, reason: str, head: bool = False) -> None:
        """Record the refusal (the first of its kind from this client on this link in the
        window; nothing for a HEAD), then raise it. Nothing taken from the URL is recorded
        or keyed on: only the refusal reason and, for a covered item, its id."""
        if not head:
            now, link = self.clock(), access.link
            window = window_of(now, self.settings.link_record_window_seconds)
            with self.rt.db.transaction() as session:
                if link_record.tally(session, link.id, client.viewer, denied_key(reason), None, window, now,
                                     client.agent):
                    details: dict[str, Any] = {"outcome": "denied", "reason": reason, **_who(client, window),
                                               "items": sorted(link.item_ids)}
                    if access.item is not None:  # a covered item (never one of another case)
                        details["requested_item"] = access.item.id
                    custody.record(session, Action.LINK_ACCESSED, {"case": access.case_ref, "link": link.id},
                                   link_actor(link), details)
        raise Denied(status, reason)

    # -- passcodes ----------------------------------------------------------------------------

    def try_passcode(self, token: str, client: Client, given: str) -> Access:
        """Admit on the right passcode (a new view session, passcode given); otherwise
        count the failure, lock the link after too many, and raise Denied (403 wrong, 429
        too fast, 410 locked)."""
        now = self.clock()
        claims = self._claims(token, now)
        self._pace(claims, client, now)
        with self.rt.db.sessions() as session:
            link = session.get(Link, claims.link_id)
            if link is None or link.passcode_hash is None:
                raise Denied(404, "no passcode for this link")
            access = Access(link, session.get_one(Case, link.case_id).ref, "")
            used_up = self._used_up(session, link, client, now)
        refusal = self._refusal(link, claims, now) or ((410, "uses exhausted") if used_up else None)
        if refusal is not None:
            self._deny(access, client, *refusal)
        # Per link, not per client: guesses from many addresses share one pace.
        if self._passcodes is not None and self._passcodes.wait(link.id, now.timestamp()):
            raise Denied(429, "too many attempts")
        if check_passcode(link.passcode_hash, given):
            window = window_of(now, self.settings.link_record_window_seconds)
            with self.rt.db.transaction() as session:
                session.execute(update(Link).where(Link.id == link.id).values(failed_attempts=0))
                if link_record.tally(session, link.id, client.viewer, PASSCODE, None, window, now, client.agent):
                    custody.record(session, Action.LINK_ACCESSED, {"case": access.case_ref, "link": link.id},
                                   link_actor(link), {"outcome": "granted", "kind": "passcode", **_who(client, window)})
            self._start_session(access, client, now, passcode_ok=True)
            return access
        limit = self.settings.link_passcode_attempts
        with self.rt.db.transaction() as session:
            row = session.get_one(Link, link.id, with_for_update=True)
            row.failed_attempts += 1
            locked = row.failed_attempts >= limit and row.locked_at is None
            if locked:
                row.locked_at = now
            # Every wrong guess is recorded: there are at most a few before the link locks.
            custody.record(session, Action.LINK_ACCESSED, {"case": access.case_ref, "link": link.id}, link_actor(link), {
                "outcome": "denied", "reason": "wrong passcode", "attempt": row.failed_attempts,
                "locked": row.locked_at is not None, "client_ip": client.ip, "user_agent": client.agent,
            })
        if locked:
            raise Denied(410, "locked after wrong passcodes")
        raise Denied(403, "wrong passcode")

    # -- the record of what was seen --------------------------------------------------------

    def record(self, access: Access, client: Client, kind: str, sent: Range | None = None,
               size: int | None = None) -> None:
        """``kind``: page, view (a working copy) or download (the original, ``sent`` the
        bytes being served of ``size``). The first request of a window is an entry now;
        the rest of the window goes into one summary when it closes, counted in memory
        until the next flush, except a whole-file download, which is written before it is
        sent."""
        full = self.count(access, client, kind, sent, size)
        if full is None:
            self._write(access, client, kind, sent, size)
        elif full:  # too many rows waiting: write them now rather than hold more
            self.flush()

    def count(self, access: Access, client: Client, kind: str, sent: Range | None = None,
              size: int | None = None) -> bool | None:
        """The part of :meth:`record` done in memory (no database access, so an async route
        may call it on the event loop): None when the request must be written instead (call
        :meth:`record`); else counted, and whether :meth:`flush` is due now."""
        now, item = self.clock(), access.item
        if sent is not None and size is not None and sent == (0, size - 1):
            return None  # a whole-file download is written before it is sent
        window = window_of(now, self.settings.link_record_window_seconds)
        row: RowKey = (access.link.id, client.viewer, _key_of(kind, access), window.start)
        full = self._pending.add(row, item.id if item else None, now, sent, keep_ranges=kind == "download")
        if full is not None:
            self._start_flusher()
        return full

    def _write(self, access: Access, client: Client, kind: str, sent: Range | None, size: int | None) -> None:
        now, link, item = self.clock(), access.link, access.item
        window = window_of(now, self.settings.link_record_window_seconds)
        key = _key_of(kind, access)
        row: RowKey = (link.id, client.viewer, key, window.start)
        whole_file = sent is not None and size is not None and sent == (0, size - 1)
        with self.rt.db.transaction() as session:
            first = link_record.tally(session, link.id, client.viewer, key, item.id if item else None, window, now,
                                      client.agent, sent)
            if first:
                subject = {"case": access.case_ref, "link": link.id}
                details: dict[str, Any] = {"outcome": "granted", "kind": kind, **_who(client, window), **access.extra}
                if item is None:  # about the link as a whole: it shows in the reports of every item it shares
                    details["items"] = sorted(link.item_ids)
                else:
                    subject["item"] = item.id
                if sent is not None:
                    details["range"] = {"first": sent[0], "last": sent[1]}
                    if size is not None:
                        details["whole_file"] = whole_file
                custody.record(session, Action.LINK_ACCESSED, subject, link_actor(link), details)
        self._pending.remember(row, window.end)  # committed: the window's row exists

    # -- counts held in memory ------------------------------------------------------------

    def flush(self) -> int:
        """Write the requests counted in memory into their rows; how many rows. On failure
        (the database down) they are kept for the next flush."""
        counts = self._pending.take(self.clock())
        if not counts:
            return 0
        try:
            with self.rt.db.transaction() as session:
                return link_record.add_counts(session, counts)
        except BaseException:
            self._pending.give_back(counts)
            raise

    def close(self) -> None:
        """Stop the flushing thread and write what is pending (at shutdown)."""
        self._stopping.set()
        if self._flusher is not None:
            self._flusher.join(timeout=10)
        self.flush()

    def _start_flusher(self) -> None:
        if self._flusher is not None:
            return
        with self._flusher_lock:
            if self._flusher is None:
                # The thread and the exit hook hold the gate weakly: a gate dropped (a test's)
                # is not kept alive by them.
                ref = weakref.ref(self)
                self._flusher = threading.Thread(target=_flush_every, args=(ref, self._stopping, self.flush_seconds),
                                                 name="link-access-flush", daemon=True)
                self._flusher.start()
                atexit.register(_flush_at_exit, ref)

    def count_report(self, session: Session, access: Access, client: Client) -> bool:
        """Count a custody report served through the link, in the caller's transaction
        (the one that exports it); true when the export is the first of its window, and so
        to be recorded (``report.exported``) there."""
        item = access.item
        if item is None:
            raise ValueError("a report is about an item: check the request with its item first")
        now = self.clock()
        window = window_of(now, self.settings.link_record_window_seconds)
        return link_record.tally(session, access.link.id, client.viewer, item_key("report", item.id), item.id,
                                 window, now, client.agent)

    def report_note(self, client: Client) -> dict[str, Any]:
        """What the ``report.exported`` entry of a report served through a link adds."""
        return _who(client, window_of(self.clock(), self.settings.link_record_window_seconds))


def _key_of(kind: str, access: Access) -> str:
    return PAGE if kind == "page" else item_key(kind, access.item.id if access.item else "")


def _keep(kept: OrderedDict[K, V], key: K, value: V) -> None:
    """Remember ``value`` as the newest, forgetting the oldest beyond ``_MAX_FRESH``."""
    kept[key] = value
    kept.move_to_end(key)
    while len(kept) > _MAX_FRESH:
        kept.popitem(last=False)


def _flush_every(ref: weakref.ReferenceType[Gate], stopping: threading.Event, seconds: float) -> None:
    while not stopping.wait(seconds):
        gate = ref()
        if gate is None:
            return
        try:
            gate.flush()
        except Exception as error:  # the database down: kept, and tried again next time
            log.warning("link access counts not written yet: %s", type(error).__name__)
        del gate


def _flush_at_exit(ref: weakref.ReferenceType[Gate]) -> None:
    gate = ref()
    if gate is not None and not gate._stopping.is_set():
        try:
            gate.close()
        except Exception:
            log.exception("link access counts lost at exit")


def _who(client: Client, window: Any) -> dict[str, Any]:
    return {"client_ip": client.ip, "user_agent": client.agent, "window": window.as_details()}

