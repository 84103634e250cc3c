"""When a case's material may first be reviewed for disposal: pure date arithmetic.

The rules follow the Criminal Procedure and Investigations Act 1996 (section 23) Code of
Practice, paragraph 5 ("Retention of material"), as numbered in the 2020 revision as best
known here; check the current text before relying on a paragraph number:

- 5.6: material that may be relevant is kept until a decision is taken whether to institute
  proceedings (here: no review date while no outcome, or after ``charged``).
- 5.7: once proceedings are instituted, it is kept at least until the accused is acquitted or
  convicted or the prosecutor decides not to proceed (``charged`` keeps it; ``nfa`` and
  ``acquitted`` end it).
- 5.8: after a conviction, at least until the convicted person is released from custody or
  discharged from hospital (a custodial sentence or hospital order), and in every case at
  least until six months from the date of conviction: the later of the two.
- 5.9: if an appeal against conviction is in progress at that point (or the Criminal Cases
  Review Commission is considering an application), until the appeal is determined: no review
  date while an appeal is open, and none before the day it closed.

The code sets no period for material after no further action or an acquittal: that is the
force's own records policy (commonly under the Management of Police Information guidance),
given here as settings (``retention_nfa_days``, ``retention_acquitted_days``). The code's
periods are minimums: the review date is when a person may first decide, never an automatic
deletion; a legal hold and four-eyes approval still stand between it and any disposal.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum

from evidence.errors import InvalidInput

CONVICTION_MONTHS = 6  # paragraph 5.8


class Outcome(StrEnum):
    PENDING = "pending"  # no charging decision yet
    CHARGED = "charged"
    NFA = "nfa"  # no further action
    CONVICTED = "convicted"
    ACQUITTED = "acquitted"


class Event(StrEnum):
    """What ``evidence cases outcome`` records."""

    NFA = "nfa"
    CHARGED = "charged"
    CONVICTED = "convicted"
    ACQUITTED = "acquitted"
    APPEAL_OPEN = "appeal-open"
    APPEAL_CLOSED = "appeal-closed"


@dataclass(frozen=True)
class Periods:
    """The force's own periods (the code sets none for these)."""

    nfa_days: int
    acquitted_days: int


@dataclass(frozen=True)
class State:
    outcome: Outcome = Outcome.PENDING
    decided_on: date | None = None  # the day of the decision: NFA, charge, verdict
    release_on: date | None = None  # convicted: release from custody or discharge from hospital
    appeal_open: bool = False
    appeal_closed_on: date | None = None


def add_months(day: date, months: int) -> date:
    """The same day ``months`` calendar months later, or that month's last day when it is
    shorter (31 August + 6 months = 28 or 29 February)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def review_date(state: State, periods: Periods) -> date | None:
    """The first day the case's material may be reviewed for disposal; None while it must be kept."""
    if state.appeal_open or state.decided_on is None:
        return None
    if state.outcome == Outcome.NFA:
        found = state.decided_on + timedelta(days=periods.nfa_days)
    elif state.outcome == Outcome.ACQUITTED:
        found = state.decided_on + timedelta(days=periods.acquitted_days)
    elif state.outcome == Outcome.CONVICTED:
        found = max(add_months(state.decided_on, CONVICTION_MONTHS), state.release_on or state.decided_on)
    else:  # pending, charged: until the decision, or the verdict (5.6, 5.7)
        return None
    if state.appeal_closed_on is not None:
        found = max(found, state.appeal_closed_on)
    return found


def apply(state: State, event: Event, on: date, release_on: date | None = None) -> State:
    """The state after ``event`` on ``on`` (for ``convicted``: the date of conviction), or
    InvalidInput when the event makes no sense now."""
    if release_on is not None and event != Event.CONVICTED:
        raise InvalidInput("a release date goes with --convicted")
    if event == Event.APPEAL_OPEN:
        if state.outcome not in (Outcome.CONVICTED, Outcome.ACQUITTED):
            raise InvalidInput("an appeal is recorded after a conviction or an acquittal")
        if state.appeal_open:
            raise InvalidInput("an appeal is already open")
        return replace(state, appeal_open=True)
    if event == Event.APPEAL_CLOSED:
        if not state.appeal_open:
            raise InvalidInput("no appeal is open")
        return replace(state, appeal_open=False, appeal_closed_on=on)
    if state.appeal_open:
        raise InvalidInput("an appeal is open: record --appeal-closed first")
    if release_on is not None and release_on < on:
        raise InvalidInput("the release date is before the date of conviction")
    return State(outcome=Outcome(str(event)), decided_on=on, release_on=release_on)
