"""getblocktemplate answers read by the native scanner (daemon.gbt) against orjson's reading of the same bytes: the
same template from every answer it takes, and the ordinary parse (with its errors) for every answer it does not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mainnet import mainnet_case

from stratum_pool import _native
from stratum_pool.coins import get_coin
from stratum_pool.daemon.gbt import ScannedTransactions, parse_template_answer
from stratum_pool.daemon.rpc import DaemonEndpoint, blocking_call
from stratum_pool.jobs.builder import template_from_gbt

ROOT = Path(__file__).resolve().parent.parent
COIN = get_coin("bitcoin", "mainnet")


def _block_entries(count: int = 40) -> list[dict[str, Any]]:
    """Entries as bitcoind lists them, from real transactions of mainnet block 574200 (segwit ones among them)."""
    entries = []
    for i, tx in enumerate(mainnet_case(574200).block.txs[1 : count + 1]):
        entries.append({"data": tx.raw.hex(), "txid": tx.txid[::-1].hex(), "hash": tx.wtxid[::-1].hex(),
                        "depends": [i] if i % 7 == 3 else [], "fee": 1000 + i, "sigops": 4 * (i % 3),
                        "weight": len(tx.raw) * 4})
    return entries


def _answer(entries: Any, **result: Any) -> dict[str, Any]:
    gbt = {"capabilities": ["proposal"], "version": 0x20000000, "rules": ["csv", "!segwit", "taproot"],
           "vbavailable": {}, "vbrequired": 0, "previousblockhash": "00" * 4 + "ab" * 28, "transactions": entries,
           "coinbaseaux": {}, "coinbasevalue": 1_300_076_961, "longpollid": "ab" * 32 + "17",
           "target": "00" * 8 + "ff" * 24, "mintime": 1_558_000_000, "mutable": ["time", "transactions", "prevblock"],
           "noncerange": "00000000ffffffff", "sigoplimit": 80000, "sizelimit": 4000000, "weightlimit": 4000000,
           "curtime": 1_558_001_000, "bits": "172c4e11", "height": 574200,
           "default_witness_commitment": "6a24aa21a9ed" + "11" * 32}
    gbt.update(result)
    return {"result": gbt, "error": None, "id": 7}


def _ordinary(body: bytes) -> Any:
    return orjson.loads(body)


def _same_as_ordinary(body: bytes, template: bool = True) -> ScannedTransactions:
    """The scanner takes ``body``, and the answer (and the template, when it is a whole one) equal orjson's
    reading of it."""
    scanned = parse_template_answer(body)
    ordinary = _ordinary(body)
    transactions = scanned["result"]["transactions"]
    assert isinstance(transactions, ScannedTransactions)
    assert {k: v for k, v in scanned["result"].items() if k != "transactions"} == \
        {k: v for k, v in ordinary["result"].items() if k != "transactions"}
    assert {k: v for k, v in scanned.items() if k != "result"} == {k: v for k, v in ordinary.items() if k != "result"}
    expected = [{k: e[k].lower() for k in ("data", "txid", "hash") if k in e}
                for e in ordinary["result"]["transactions"]]
    assert list(transactions) == expected
    if template:
        assert template_from_gbt(scanned["result"], COIN) == template_from_gbt(ordinary["result"], COIN)
    return transactions


def test_the_mainnet_template_the_bench_serves() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from standin_daemon import base_template
    finally:
        sys.path.remove(str(ROOT / "bench"))
    body = orjson.dumps({"result": base_template(), "error": None, "id": 1})
    transactions = _same_as_ordinary(body)
    assert len(transactions) == 3314


@pytest.mark.parametrize("indent", [None, 1, 4])
@pytest.mark.parametrize("transactions_first", [False, True])
def test_a_bitcoind_shaped_answer_however_it_is_laid_out(indent: int | None, transactions_first: bool) -> None:
    answer = _answer(_block_entries())
    if transactions_first:
        answer["result"] = {"transactions": answer["result"].pop("transactions"), **answer["result"]}
    body = json.dumps(answer, indent=indent).encode()
    scanned = _same_as_ordinary(body)
    assert len(scanned) == 40 and scanned[0]["txid"] == answer["result"]["transactions"][0]["txid"]
    assert scanned[-1] == scanned[39] and scanned[1:3] == [scanned[1], scanned[2]]
    with pytest.raises(IndexError):
        scanned[40]


def test_entries_without_hash_and_a_template_without_transactions() -> None:
    entries = _block_entries(5)
    for entry in entries[::2]:
        del entry["hash"]
    answer = _answer(entries)
    del answer["result"]["default_witness_commitment"]  # the builder computes it from the wtxids
    scanned = _same_as_ordinary(orjson.dumps(answer))
    assert scanned.wtxids[0] is None and scanned.wtxids[1] is not None
    assert len(_same_as_ordinary(orjson.dumps(_answer([])))) == 0


def test_escapes_and_unicode_outside_the_array_are_the_rest_parsers_business() -> None:
    body = orjson.dumps(_answer(_block_entries(3), coinbaseaux={"flags": "caf\u00e9 \"quoted\" \\ /"},
                                longpollid="a\u2028b"))
    _same_as_ordinary(body)
    body = body.replace(b'"flags"', b'"fl\\u0061gs"')  # an escaped key outside the array: the rest's own
    _same_as_ordinary(body)


def _entry_json(extra: str = "", data: str | None = None, txid: str | None = None) -> str:
    tx = mainnet_case(574200).block.txs[1]
    data = tx.raw.hex() if data is None else data
    txid = tx.txid[::-1].hex() if txid is None else txid
    return '{"data":"' + data + '","txid":"' + txid + '"' + extra + "}"


def _body(*entries: str, wrap: str = '{"result":{"height":574200,"transactions":[%s]},"error":null,"id":1}') -> bytes:
    return (wrap % ",".join(entries)).encode()


@pytest.mark.parametrize("body", [
    _body(_entry_json(', "fee": {"a": [1, 2.5e-3, -0, true, false, null, "x\\"y\\u00e9"]}')),
    _body(_entry_json(', "weight": 1E+3, "sigops": -12.0e1')),
    _body(_entry_json(), _entry_json(', "depends": [1]')),
    _body(_entry_json(' , "hash" : "' + "ab" * 32 + '" ')),
], ids=["nested", "numbers", "two", "spaces"])
def test_every_json_value_in_an_entry_is_checked_and_skipped(body: bytes) -> None:
    assert _native.scan_template_transactions(body) is not None
    _same_as_ordinary(body, template=False)


@pytest.mark.parametrize("body", [
    b'{"result":null,"error":{"code":-10,"message":"Bitcoin is downloading blocks..."},"id":1}',
    _body(_entry_json(), wrap='{"result":[%s],"error":null,"id":1}'),
    _body(_entry_json(', "n\\u0061me": 1')),  # an escaped key inside the array
    _body(_entry_json(', "note": "caf\u00e9"')),  # a byte over 0x7f inside the array
    _body(_entry_json(', "data": "00"')),  # a duplicate key the scanner reads
    _body('{"txid":"%s"}' % ("ab" * 32)),  # no data: the template computes nothing from it; the builder says
    _body(_entry_json(data="0g")),  # not hex
    _body(_entry_json(data="abc")),  # odd
    _body(_entry_json(txid="ab" * 31)),  # short txid
    _body(_entry_json(txid=("ab" * 31) + "zz")),  # txid not hex
    _body(_entry_json(', "hash": "ab"')),  # short hash
    _body(_entry_json(), wrap='{"result":{"transactions":[%s],"transactions":[]},"error":null,"id":1}'),
    _body(_entry_json(), wrap='{"result":{"transactions":[%s]},"result":{},"error":null,"id":1}'),
    _body("{}"),
    _body("[]"),
    _body(_entry_json(), wrap='{"result":{"x":' + "[" * 40 + "]" * 40 + ',"transactions":[%s]},"id":1}'),
], ids=["error", "result-array", "escaped-key", "non-ascii", "duplicate", "no-data", "bad-hex", "odd-hex",
        "short-txid", "txid-not-hex", "short-hash", "two-arrays", "two-results", "empty-entry", "array-entry",
        "deep"])
def test_answers_the_scanner_leaves_to_the_ordinary_parse(body: bytes) -> None:
    assert _native.scan_template_transactions(body) is None
    assert parse_template_answer(body) == _ordinary(body)


@pytest.mark.parametrize("body", [
    _body(_entry_json(', "fee": 01')),
    _body(_entry_json(', "fee": tru')),
    _body(_entry_json(', "fee": 1.')),
    _body(_entry_json(', "fee": "a\\qb"')),
    _body(_entry_json(', "fee": "a\tb"')),
    _body(_entry_json(', "fee": [1,]')),
    _body(_entry_json(', "fee": {"a" 1}')),
    _body(_entry_json()) + b" x",
    _body(_entry_json())[:-5],
    _body(_entry_json() + ","),
], ids=["leading-zero", "literal", "fraction", "escape", "control", "trailing-comma", "no-colon", "garbage",
        "truncated", "array-comma"])
def test_json_that_is_not_json_is_refused_as_orjson_refuses_it(body: bytes) -> None:
    assert _native.scan_template_transactions(body) is None
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)
    with pytest.raises(orjson.JSONDecodeError):
        parse_template_answer(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["fee", "depends", "sigops", "weight", "x", "caf\u00e9"]),
                                json_values, max_size=3), min_size=1, max_size=4),
       st.sampled_from([None, 0, 2]), st.booleans())
def test_any_entries_read_as_orjson_reads_them(extras: list[dict[str, Any]], indent: int | None,
                                               with_hash: bool) -> None:
    entries = _block_entries(len(extras))
    for entry, extra in zip(entries, extras, strict=True):
        if not with_hash:
            del entry["hash"]
        entry.update(extra)
    body = json.dumps(_answer(entries), indent=indent).encode()
    scanned = _native.scan_template_transactions(body)
    if scanned is None:  # taken or not, the answer reads as orjson reads it
        assert any(not key.isascii() or (isinstance(v, str) and not v.isascii()) or not json.dumps(v).isascii()
                   for extra in extras for key, v in extra.items()), body[:200]
        assert parse_template_answer(body) == _ordinary(body)
    else:
        _same_as_ordinary(body)


def test_the_pools_rpc_call_reads_the_stand_in_daemons_template_through_the_scanner() -> None:
    daemon = subprocess.Popen([sys.executable, str(ROOT / "bench" / "standin_daemon.py")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert daemon.stdout is not None
        port = int(daemon.stdout.readline().split()[1])
        endpoint = DaemonEndpoint("standin", f"http://127.0.0.1:{port}", user="u", password="p")
        gbt = blocking_call(endpoint, "getblocktemplate", [{"rules": ["segwit"]}])
        assert isinstance(gbt["transactions"], ScannedTransactions) and len(gbt["transactions"]) == 3314
        template = template_from_gbt(gbt, COIN)
        assert len(template.merkle_branch) == 12
    finally:
        daemon.terminate()
        daemon.wait(10)


def test_mutated_answers_read_as_the_rpc_call_reads_them_or_not_at_all() -> None:
    """Bytes flipped, cut and inserted anywhere in an answer (2,000 mutants, a fixed seed; 120,000 were run
    while writing the scanner): whatever the scanner takes reads as the RPC call's ordinary parse reads it
    (orjson, then json with Decimal for what orjson refuses), or raises orjson's error for the rest, on which
    the RPC call parses the whole answer the ordinary way."""
    import random
    from decimal import Decimal

    rng = random.Random(19)
    bases = [json.dumps(_answer(_block_entries(6)), indent=indent).encode() for indent in (None, 1)]
    alphabet = b'{}[]",:\\ 0123456789abcdefABCDEFtruefalsenull-+.eE\t\n\x00\x7f\xc3\xa9u'
    taken = 0
    for _ in range(2000):
        mutant = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            op, pos = rng.random(), rng.randrange(len(mutant))
            if op < 0.4:
                mutant[pos] = rng.choice(alphabet)
            elif op < 0.7:
                del mutant[pos : pos + rng.randint(1, 3)]
            else:
                mutant[pos:pos] = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 3)))
        body = bytes(mutant)
        if _native.scan_template_transactions(body) is None:
            continue  # parse_template_answer is orjson.loads itself then
        try:
            got = parse_template_answer(body)
        except orjson.JSONDecodeError:
            continue
        try:
            ordinary = orjson.loads(body)
        except orjson.JSONDecodeError:
            ordinary = json.loads(body, parse_float=Decimal)  # must not fail: the scanner checked the grammar
        assert list(got["result"]["transactions"]) == [{k: e[k].lower() for k in ("data", "txid", "hash") if k in e}
                                                       for e in ordinary["result"]["transactions"]]
        assert {k: v for k, v in got["result"].items() if k != "transactions"} == \
            {k: v for k, v in ordinary["result"].items() if k != "transactions"}
        taken += 1
    assert taken > 200  # the scanner took a fair share of them (flips in hex digits, whitespace, ...)
