"""Stratum V1 wire format: one JSON-RPC object per line, parsed strictly, encoded with orjson.

Parsing never trusts the peer: anything that is not a JSON object with a usable shape raises
:class:`ProtocolError`; a request whose id is usable but whose method or params are not carries that
id in the error (``request_id``), so the session can still answer it instead of closing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson

from stratum_pool.jobs.job import Job

# Stratum error codes and their default texts are named once, in shares.verdicts.
from stratum_pool.shares.verdicts import ERR_OTHER, ERROR_MESSAGES

RequestId = int | str | None


class ProtocolError(ValueError):
    """The peer sent something that is not a Stratum request.

    ``request_id`` is set (and ``has_id`` true) when the line was a JSON object with a usable id, so an
    error answer can still be addressed to it.
    """

    def __init__(self, message: str, request_id: RequestId = None, has_id: bool = False) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.has_id = has_id


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and these are made per share
class Request:
    """One request (or notification, when ``id`` is None) from the miner."""

    id: RequestId
    method: str
    params: tuple[object, ...]


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 5x, and these are made per share
class Response:
    """A miner answering something we sent (e.g. ``client.get_version``); sessions ignore these."""

    id: RequestId


def parse_line(line: bytes) -> Request | Response:
    """Parse one line (without or with its trailing newline) into a :class:`Request` or :class:`Response`."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object, got {type(obj).__name__}")
    raw_id = obj.get("id")
    # bool is an int subclass; a float id would not round-trip; both are refused.
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, int | str)):
        raise ProtocolError(f"id must be an integer, a string or null, got {type(raw_id).__name__}")
    request_id: RequestId = raw_id
    method = obj.get("method")
    if method is None and ("result" in obj or "error" in obj):
        return Response(request_id)
    if not isinstance(method, str) or not method:
        raise ProtocolError("method must be a non-empty string", request_id, True)
    params = obj.get("params")
    if params is None:
        params = []
    if not isinstance(params, list):
        raise ProtocolError(f"params must be a list, got {type(params).__name__}", request_id, True)
    return Request(request_id, method, tuple(params))


def parse_submit(line: bytes) -> tuple[RequestId, tuple[object, ...]] | None:
    """The id and params of ``line`` when it is a well-formed ``mining.submit`` request with a params list,
    exactly as :func:`parse_line` would give them; None for any other line (:func:`parse_line` judges it).
    The share path's parser: no :class:`Request` is made."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict or obj.get("method") != "mining.submit":
        return None
    request_id = obj.get("id")
    params = obj.get("params")
    if type(params) is not list or not (request_id is None or type(request_id) is int or type(request_id) is str):
        return None
    return request_id, tuple(params)


# the integers orjson serializes (an id outside them takes encode_result's path, and its error)
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


def _dumps(obj: object) -> bytes:
    return orjson.dumps(obj) + b"\n"


def encode_result(request_id: RequestId, result: object) -> bytes:
    return _dumps({"id": request_id, "result": result, "error": None})


def encode_true(request_id: RequestId) -> bytes:
    """``encode_result(request_id, True)``, the answer to every accepted share (formatted, not serialized,
    for the integer ids miners use)."""
    if type(request_id) is int and _INT64_MIN <= request_id <= _UINT64_MAX:
        return b'{"id":%d,"result":true,"error":null}\n' % request_id
    return encode_result(request_id, True)


def encode_error(
    request_id: RequestId, code: int, message: str | None = None, result: object = None
) -> bytes:
    """An error answer: ``"error": [code, message, null]``; the message defaults to the code's text."""
    text = message if message is not None else ERROR_MESSAGES.get(code, ERROR_MESSAGES[ERR_OTHER])
    return _dumps({"id": request_id, "result": result, "error": [code, text, None]})


def encode_notification(method: str, params: list[object] | tuple[object, ...]) -> bytes:
    return _dumps({"id": None, "method": method, "params": list(params)})


def difficulty_number(difficulty: float) -> int | float:
    """Whole difficulties go out as integers (``1000``, not ``1000.0``); some firmwares parse ints."""
    if math.isfinite(difficulty) and difficulty >= 1 and difficulty == int(difficulty):
        return int(difficulty)
    return difficulty


def stratum_prevhash(prevhash: bytes) -> str:
    """Stratum's prevhash: the internal order with each 4-byte word byte-swapped, as hex."""
    return b"".join(prevhash[i : i + 4][::-1] for i in range(0, len(prevhash), 4)).hex()


def notify_params(job: Job) -> tuple[object, ...]:
    """The ``mining.notify`` params without the clean_jobs flag (the job's cached copy when it has one)."""
    if job.notify_prefix:
        return job.notify_prefix
    t = job.template
    branch = [job.branch[i : i + 32].hex() for i in range(0, len(job.branch), 32)]
    return (
        job.job_id,
        stratum_prevhash(t.prevhash),
        job.coinb1.hex(),
        job.coinb2.hex(),
        branch,
        f"{t.version:08x}",
        f"{t.nbits:08x}",
        f"{t.curtime:08x}",
    )


# Server-pushed messages.


def notify(job: Job, clean: bool) -> bytes:
    return encode_notification("mining.notify", [*notify_params(job), clean])


def set_difficulty(difficulty: float) -> bytes:
    return encode_notification("mining.set_difficulty", [difficulty_number(difficulty)])


def set_version_mask(mask: int) -> bytes:
    return encode_notification("mining.set_version_mask", [f"{mask:08x}"])


def set_extranonce(extranonce1: bytes, extranonce2_size: int) -> bytes:
    return encode_notification("mining.set_extranonce", [extranonce1.hex(), extranonce2_size])


def client_reconnect(host: str | None = None, port: int | None = None, wait_seconds: int = 0) -> bytes:
    params: list[object] = [] if host is None else [host, port, wait_seconds]
    return encode_notification("client.reconnect", params)


def client_show_message(message: str) -> bytes:
    return encode_notification("client.show_message", [message])
