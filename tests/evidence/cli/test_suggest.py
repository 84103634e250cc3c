"""'Did you mean' for case references (evidence.cli.suggest)."""

from __future__ import annotations

from evidence.cli.suggest import close_to, sentence, suggesting
from evidence.errors import NotFound, Unavailable

KNOWN = ["OP-HALFORD", "OP-ELM", "OP-1", "OP-12"]


def test_one_slip_finds_the_case() -> None:
    assert close_to("OP-HALFRD", KNOWN) == ["OP-HALFORD"]  # a letter missing
    assert close_to("OP-HALFROD", KNOWN) == ["OP-HALFORD"]  # two swapped
    assert close_to("op-halford ", KNOWN) == ["OP-HALFORD"]  # letter case and a stray space do not count


def test_no_suggestion_when_nothing_is_close_or_it_exists() -> None:
    assert close_to("OP-ZZZ", KNOWN) == []
    assert close_to("OP-9", KNOWN) == []  # a short reference is not a typo of another short one
    assert close_to("op-elm", KNOWN) == []  # it exists; whatever was not found, it was not this


def test_the_sentence() -> None:
    assert sentence(["OP-1"]) == "Did you mean OP-1?"
    assert sentence(["A", "B", "C"]) == "Did you mean A, B or C?"
    assert sentence([]) == ""


def test_an_error_gains_the_suggestion_or_stays_as_it_was() -> None:
    said = suggesting(NotFound("case OP-HALFRD does not exist"), "OP-HALFRD", lambda: KNOWN)
    assert isinstance(said, NotFound) and said.message == "case OP-HALFRD does not exist. Did you mean OP-HALFORD?"

    def away() -> list[str]:
        raise Unavailable("the server is not reachable")

    error = NotFound("case OP-HALFRD does not exist")
    assert suggesting(error, "OP-HALFRD", away) is error
