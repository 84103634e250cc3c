"""The witness's HTTP service: ``POST /add-checkpoint`` as C2SP tlog-witness says, nothing else.

Its own small Starlette app under uvicorn, apart from the evidence app: another force runs it
with its own key and the logs it witnesses (origin and the log's verifier keys). A request is
read up to `MAX_BODY` bytes, its form checked (400), its origin looked up (404), the log's
signature verified (403), and only then the state of that one log locked, checked against the
consistency proof (`audit.witness.check_update`: 400, 409, 422), written durably, and the
timestamped cosignature line returned. Nothing from the request becomes a path, and a witness
keeps one fixed-size record per configured log, whatever it is sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from audit import Checkpoint, NoteVerifier, VerificationError, open_note
from audit.checkpoint import split_note
from audit.cosignature import Cosigner
from audit.witness import SIZE_CONTENT_TYPE, MalformedRequest, Refusal, check_update, format_size, parse_request
from evidence.witness.state import StateStore

log = logging.getLogger("evidence.witness")

# The largest request: the old line, 63 proof lines of 45 bytes, and a checkpoint note with
# up to 100 signature lines (audit.checkpoint.MAX_SIGNATURES) is well under this.
MAX_BODY = 64 * 1024


def create_app(cosigner: Cosigner, logs: Mapping[str, Sequence[NoteVerifier]], store: StateStore,
               clock: Callable[[], float] = time.time) -> Starlette:
    async def add_checkpoint(request: Request) -> Response:
        try:
            body = await _read_bounded(request)
        except _TooLarge:
            return PlainTextResponse(f"the request body is larger than {MAX_BODY} bytes\n", status_code=413)
        except ClientDisconnect:
            return PlainTextResponse("", status_code=400)
        try:
            line = await anyio.to_thread.run_sync(_add, body)
        except Refusal as refusal:
            if refusal.size is not None:
                # Exactly this type, as the spec says: no charset parameter.
                return Response(format_size(refusal.size), status_code=refusal.status,
                                headers={"Content-Type": SIZE_CONTENT_TYPE})
            return PlainTextResponse(refusal.message + "\n", status_code=refusal.status)
        return PlainTextResponse(line)

    def _add(body: bytes) -> str:
        try:
            request = parse_request(body)
            text, _ = split_note(request.note)
        except (MalformedRequest, VerificationError) as error:
            raise Refusal(400, f"malformed request: {error}") from None
        origin = text.partition("\n")[0]
        verifiers = logs.get(origin)
        if not verifiers:
            raise Refusal(404, "this witness does not witness that log")
        try:
            open_note(request.note, verifiers)
        except VerificationError as error:
            raise Refusal(403, f"the checkpoint is not signed by the log's key: {error}") from None
        try:
            checkpoint = Checkpoint.parse(text)
        except VerificationError as error:
            raise Refusal(400, f"malformed checkpoint: {error}") from None
        with store.lock(origin):
            stored = store.read(origin)
            try:
                new = check_update(stored, request.old, request.proof, checkpoint)
            except Refusal as refusal:
                log.warning("refused a checkpoint of %s at size %d: %s", origin, checkpoint.size, refusal.message)
                raise
            if new != stored:
                store.write(origin, new)
        return cosigner.cosign(text, int(clock()))

    return Starlette(routes=[Route("/add-checkpoint", add_checkpoint, methods=["POST"])])


class _TooLarge(Exception):
    pass


async def _read_bounded(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise _TooLarge
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def parse_logs(specs: Sequence[str]) -> dict[str, list[NoteVerifier]]:
    """``ORIGIN=VERIFIER_KEY`` each (an origin may be given more than once: several keys);
    ValueError for one that is not."""
    logs: dict[str, list[NoteVerifier]] = {}
    for spec in specs:
        # A vkey holds no '=' (base64 of 33 bytes has no padding); an origin may.
        origin, equals, vkey = spec.rpartition("=")
        if not equals or not origin:
            raise ValueError(f"--log {spec!r} is not ORIGIN=VERIFIER_KEY")
        try:
            logs.setdefault(origin, []).append(NoteVerifier.from_vkey(vkey.strip()))
        except VerificationError as error:
            raise ValueError(f"--log {origin}: {error}") from None
    return logs
