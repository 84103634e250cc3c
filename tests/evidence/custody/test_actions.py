"""The custody actions: one list, each with the words a report shows."""

from __future__ import annotations

from evidence.custody.actions import Action
from evidence.custody.statement import label


def test_every_action_has_words_for_a_report() -> None:
    for action in Action:
        assert action.label and action.label != action.value
        assert label(action.value) == action.label


def test_an_action_recorded_before_it_was_renamed_is_shown_as_recorded() -> None:
    assert label("case.archived") == "case.archived"


def test_every_action_is_named_domain_dot_event_and_its_member_alike() -> None:
    for action in Action:
        domain, _, verb = action.value.partition(".")
        assert domain and verb and action.value == action.value.lower() and action.name == action.value.upper().replace(".", "_")
