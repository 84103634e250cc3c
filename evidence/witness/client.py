"""One add-checkpoint request to a witness (C2SP tlog-witness), with bounded waits and answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import requests
import urllib3

from audit.witness import SIZE_CONTENT_TYPE, MalformedRequest, format_request, parse_size

MAX_ANSWER = 64 * 1024  # a few signature lines; a witness cannot make us read more


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    size: int | None = None  # a 409's size: where the witness stands


class WitnessUnreachable(Exception):
    """No answer (down, refused, timed out, or an answer too large to be one)."""


def add_checkpoint(url: str, old: int, proof: Sequence[bytes], note: str, timeout: float) -> Answer:
    body = format_request(old, proof, note)
    try:
        with requests.post(f"{url}/add-checkpoint", data=body, timeout=(min(timeout, 5.0), timeout), stream=True,
                           allow_redirects=False, headers={"Content-Type": "text/plain; charset=utf-8"}) as answer:
            data = answer.raw.read(MAX_ANSWER + 1, decode_content=True)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        raise WitnessUnreachable(f"{type(error).__name__}: {error}") from None
    if len(data) > MAX_ANSWER:
        raise WitnessUnreachable(f"the answer is larger than {MAX_ANSWER} bytes")
    size = None
    if answer.status_code == 409 and answer.headers.get("content-type", "").split(";")[0].strip() == SIZE_CONTENT_TYPE:
        try:
            size = parse_size(data)
        except MalformedRequest:
            size = None
    return Answer(answer.status_code, data, size)
