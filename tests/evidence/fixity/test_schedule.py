"""When objects fall due: once a cycle each, at a place in the cycle of their own, so that a
vault stored all at once is checked spread over the cycle, and an object checked out of turn
is not due again at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from evidence.fixity.schedule import next_due, phase

CYCLE = timedelta(days=30)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_the_next_check_is_after_the_last_and_at_most_a_cycle_on() -> None:
    for n in range(2000):
        object_id = uuid.uuid4().hex
        verified = NOW + timedelta(seconds=n * 997.3)
        due = next_due(verified, object_id, CYCLE)
        assert verified < due <= verified + CYCLE


def test_checked_on_its_turn_the_next_turn_is_one_cycle_later_and_the_grid_holds() -> None:
    object_id = uuid.uuid4().hex
    first = next_due(NOW, object_id, CYCLE)
    second = next_due(first, object_id, CYCLE)
    assert second - first == CYCLE
    # Checked late (the run came an hour after its turn): its next turn is still on its grid.
    assert next_due(first + timedelta(hours=1), object_id, CYCLE) == second


def test_an_object_checked_out_of_turn_is_not_due_at_once() -> None:
    object_id = uuid.uuid4().hex
    checked = NOW + timedelta(days=3)  # `--all`, say
    assert next_due(checked, object_id, CYCLE) > checked


def test_a_vault_stored_at_once_comes_due_spread_over_the_cycle() -> None:
    ids = [uuid.uuid4().hex for _ in range(10_000)]
    tenths = [0] * 10
    for object_id in ids:
        due = next_due(NOW, object_id, CYCLE)
        tenths[min(int((due - NOW) / CYCLE * 10), 9)] += 1
    # Each tenth of the cycle gets about a tenth of the objects (binomial: sd ~ 30).
    assert all(850 < count < 1150 for count in tenths), tenths


def test_the_place_in_the_cycle_is_fixed_by_the_id() -> None:
    assert phase("a" * 32) == phase("a" * 32)
    assert 0 <= phase("b" * 32) < 1
    with pytest.raises(ValueError):
        next_due(NOW, "a", timedelta(0))
