"""The access log names links by id, never by token, and cannot be forged into."""

from __future__ import annotations

from evidence.http.access_log import LinkIds, redact

LINK = "ab" * 16


def known(token: str) -> str | None:
    return LINK if token == "genuine.token.sig" else None


def test_a_token_in_a_path_becomes_its_link_id() -> None:
    assert redact("/s/genuine.token.sig", known) == f"/s/link:{LINK}"
    assert redact("/s/genuine.token.sig/items/cd/original", known) == f"/s/link:{LINK}/items/cd/original"
    assert redact("/s/forged.token.sig/items/cd/proxy", known) == "/s/[invalid]/items/cd/proxy"
    assert redact("/s/", known) == "/s/[invalid]"
    assert redact("/api/v1/items", known) == "/api/v1/items"


def test_a_hostile_path_cannot_forge_or_flood_lines() -> None:
    assert redact("/x\r\nINFO: forged line", known) == "/x??INFO: forged line"
    assert len(redact("/" + "a" * 100_000, known)) == 303


def test_link_ids_are_verified_once_per_token() -> None:
    calls: list[str] = []

    def verify(token: str) -> str | None:
        calls.append(token)
        return known(token)

    ids = LinkIds(verify, size=2)
    assert [ids("genuine.token.sig") for _ in range(5)] == [LINK] * 5 and calls == ["genuine.token.sig"]
    assert ids("forged") is None and ids("forged") is None and calls.count("forged") == 2  # never cached
