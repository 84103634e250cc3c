"""The CPIA code's retention rules as date arithmetic (evidence.retention.policy): worked
examples from paragraphs 5.6-5.9, and properties over any dates."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evidence.errors import InvalidInput
from evidence.retention.policy import Event, Outcome, Periods, State, add_months, apply, review_date

PERIODS = Periods(nfa_days=365, acquitted_days=730)
DAYS = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31))


def after(*events: tuple[Event, date] | tuple[Event, date, date]) -> State:
    found = State()
    for event in events:
        found = apply(found, *event)
    return found


def test_kept_until_the_charging_decision_and_while_charged() -> None:  # 5.6, 5.7
    assert review_date(State(), PERIODS) is None
    assert review_date(after((Event.CHARGED, date(2026, 1, 5))), PERIODS) is None


def test_no_further_action_and_acquittal_take_the_forces_periods() -> None:
    assert review_date(after((Event.NFA, date(2026, 1, 5))), PERIODS) == date(2027, 1, 5)
    acquitted = after((Event.CHARGED, date(2026, 1, 5)), (Event.ACQUITTED, date(2026, 3, 1)))
    assert review_date(acquitted, PERIODS) == date(2028, 2, 29)  # 730 days, over a leap day
    assert review_date(after((Event.NFA, date(2026, 1, 5))), Periods(0, 0)) == date(2026, 1, 5)


def test_a_conviction_keeps_it_six_months_or_until_release_whichever_is_later() -> None:  # 5.8
    # A non-custodial sentence, or release within six months: six months from conviction.
    assert review_date(after((Event.CONVICTED, date(2026, 2, 10))), PERIODS) == date(2026, 8, 10)
    early = after((Event.CONVICTED, date(2026, 2, 10), date(2026, 4, 1)))
    assert review_date(early, PERIODS) == date(2026, 8, 10)
    # A custodial sentence past six months: until release.
    late = after((Event.CONVICTED, date(2026, 2, 10), date(2029, 6, 30)))
    assert review_date(late, PERIODS) == date(2029, 6, 30)
    # The end of a month: 31 August + 6 months is the last day of February.
    assert review_date(after((Event.CONVICTED, date(2025, 8, 31))), PERIODS) == date(2026, 2, 28)


def test_an_open_appeal_keeps_it_until_determined() -> None:  # 5.9
    convicted = after((Event.CONVICTED, date(2026, 2, 10)))
    appealed = apply(convicted, Event.APPEAL_OPEN, date(2026, 3, 1))
    assert appealed.appeal_open and review_date(appealed, PERIODS) is None
    # Determined after the six months: kept until that day; before them, six months still.
    assert review_date(apply(appealed, Event.APPEAL_CLOSED, date(2027, 1, 20)), PERIODS) == date(2027, 1, 20)
    assert review_date(apply(appealed, Event.APPEAL_CLOSED, date(2026, 5, 1)), PERIODS) == date(2026, 8, 10)


@pytest.mark.parametrize(("state", "event", "said"), [
    (State(), Event.APPEAL_OPEN, "after a conviction or an acquittal"),
    (after((Event.CHARGED, date(2026, 1, 1))), Event.APPEAL_OPEN, "after a conviction or an acquittal"),
    (after((Event.CONVICTED, date(2026, 1, 1))), Event.APPEAL_CLOSED, "no appeal is open"),
    (after((Event.CONVICTED, date(2026, 1, 1)), (Event.APPEAL_OPEN, date(2026, 2, 1))), Event.APPEAL_OPEN,
     "already open"),
    (after((Event.CONVICTED, date(2026, 1, 1)), (Event.APPEAL_OPEN, date(2026, 2, 1))), Event.ACQUITTED,
     "--appeal-closed first"),
])
def test_events_that_make_no_sense_now_are_refused(state: State, event: Event, said: str) -> None:
    with pytest.raises(InvalidInput, match=said):
        apply(state, event, date(2026, 6, 1))


def test_a_release_date_goes_with_a_conviction_and_not_before_it() -> None:
    with pytest.raises(InvalidInput, match="goes with --convicted"):
        apply(State(), Event.NFA, date(2026, 1, 1), date(2027, 1, 1))
    with pytest.raises(InvalidInput, match="before the date of conviction"):
        apply(State(), Event.CONVICTED, date(2026, 1, 1), date(2025, 12, 31))


@given(DAYS, st.integers(min_value=0, max_value=1200))
def test_add_months_keeps_the_day_or_takes_the_months_last(day: date, months: int) -> None:
    later = add_months(day, months)
    assert (later.year * 12 + later.month) - (day.year * 12 + day.month) == months
    assert later.day == day.day or (later.day < day.day and (later + timedelta(days=1)).day == 1)


@given(DAYS, st.one_of(st.none(), st.integers(min_value=0, max_value=20 * 365)))
def test_a_conviction_is_never_reviewed_before_six_months_nor_before_release(convicted: date,
                                                                             served: int | None) -> None:
    release = None if served is None else convicted + timedelta(days=served)
    found = review_date(apply(State(), Event.CONVICTED, convicted, release), PERIODS)
    assert found is not None
    assert found >= add_months(convicted, 6) > convicted
    assert release is None or found >= release
    assert found in (add_months(convicted, 6), release)  # the later of the two, nothing else


@given(DAYS, st.integers(min_value=0, max_value=5000), st.integers(min_value=0, max_value=5000))
def test_an_appeal_never_brings_the_review_forward(convicted: date, opened: int, closed: int) -> None:
    before = apply(State(), Event.CONVICTED, convicted)
    appealed = apply(before, Event.APPEAL_OPEN, convicted + timedelta(days=opened))
    determined = apply(appealed, Event.APPEAL_CLOSED, convicted + timedelta(days=opened + closed))
    plain, later = review_date(before, PERIODS), review_date(determined, PERIODS)
    assert plain is not None and later is not None
    assert later >= plain and later >= convicted + timedelta(days=opened + closed)
    assert determined.outcome == Outcome.CONVICTED
