"""The base of every JSON request body (evidence.http.api.body): text with a NUL character
is refused, in a field or in a list, before it can reach the database."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from evidence.http.api.body import Body


class Sample(Body):
    name: str
    names: list[str] = Field(default_factory=list)
    count: int = 0
    note: str | None = None


@pytest.mark.parametrize("fields", [{"name": "a\x00b"}, {"name": "a", "names": ["ok", "\x00"]}, {"name": "a", "note": "\x00"}])
def test_a_nul_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="text may not contain a NUL character"):
        Sample.model_validate(fields)


def test_everything_else_passes() -> None:
    found = Sample.model_validate({"name": "OP-1 ÿ\u2028", "names": ["a", ""], "count": 3, "note": None})
    assert found.name == "OP-1 ÿ\u2028" and found.names == ["a", ""] and found.count == 3
