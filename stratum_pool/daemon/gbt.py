"""A getblocktemplate answer read with its transactions decoded straight from the answer's bytes.

On mainnet the answer is 1-3 MB, nearly all of it the transactions' hex. Parsed as JSON, each transaction
becomes a dict and three strings (``data``, ``txid``, ``hash``) that the template decodes to bytes and drops: 4 ms
and more on the new-block path for a 3 MB answer. :func:`parse_template_answer` has the native scanner
(``_native.scan_template_transactions``) check the answer's structure and decode the transactions array itself,
then parses only the rest of the answer with orjson; the array becomes a :class:`ScannedTransactions`, which
``jobs.builder.template_from_gbt`` takes as it is. An answer the scanner does not take (an error, an escape in a
key, an entry without ``data`` or ``txid``, data that is not hex, ...) is parsed whole the ordinary way, which
reports whatever is wrong with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import orjson

try:  # the Cython extension built from native/ by setup.py
    from stratum_pool import _native
except ImportError:  # pragma: no cover - exercised only when the extension is not built
    _native = None  # type: ignore[assignment]


class ScannedTransactions(Sequence[dict[str, str]]):
    """A template's transactions as the scanner decoded them: ``data`` (raw bytes), ``txids`` (internal order,
    each, and ``leaves``: all of them concatenated) and ``wtxids`` (from each entry's ``hash``, internal order,
    None where the entry has none), in template order. As a sequence it reads as the entries it replaces (hex
    ``data``, ``txid`` and, where there was one, ``hash``), made on demand."""

    __slots__ = ("data", "leaves", "txids", "wtxids")

    def __init__(self, data: tuple[bytes, ...], txids: tuple[bytes, ...], leaves: bytes,
                 wtxids: tuple[bytes | None, ...]) -> None:
        if not len(data) == len(txids) == len(wtxids) == len(leaves) // 32:
            raise ValueError("scanned transactions of different lengths")
        self.data = data
        self.txids = txids
        self.leaves = leaves
        self.wtxids = wtxids

    def __len__(self) -> int:
        return len(self.data)

    def _entry(self, index: int) -> dict[str, str]:
        entry = {"data": self.data[index].hex(), "txid": self.txids[index][::-1].hex()}
        wtxid = self.wtxids[index]
        if wtxid is not None:
            entry["hash"] = wtxid[::-1].hex()
        return entry

    @overload
    def __getitem__(self, index: int) -> dict[str, str]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, str]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, str] | list[dict[str, str]]:
        if isinstance(index, slice):
            return [self._entry(i) for i in range(len(self))[index]]
        return self._entry(range(len(self))[index])  # IndexError as a list's

    def __iter__(self) -> Iterator[dict[str, str]]:
        return (self._entry(i) for i in range(len(self)))

    def __repr__(self) -> str:
        return f"ScannedTransactions({len(self)} transactions)"


def parse_template_answer(body: bytes) -> Any:
    """The getblocktemplate JSON-RPC answer in ``body``, as ``orjson.loads`` gives it, except that
    ``result["transactions"]`` is a :class:`ScannedTransactions` when the scanner takes the answer (see the
    module docstring). Raises what ``orjson.loads(body)`` raises for an answer that is not JSON."""
    scanned = _native.scan_template_transactions(body) if _native is not None else None
    if scanned is None:
        return orjson.loads(body)
    start, stop, data, txids, leaves, wtxids = scanned
    answer = orjson.loads(body[:start] + b"[]" + body[stop:])
    result = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(result, dict) or result.get("transactions") != []:  # cannot happen: the scanner found it
        return orjson.loads(body)
    result["transactions"] = ScannedTransactions(data, txids, leaves, wtxids)
    return answer
