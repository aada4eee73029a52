"""Bitcoin Cash's coinbase rules in the job builder: at least 100 bytes (padded in the scriptSig), no witness
commitment ever, the template's (canonical) transaction order kept."""

from __future__ import annotations

from typing import Any

import pytest

from stratum_pool.chain import cashaddr
from stratum_pool.chain.address import address_to_script
from stratum_pool.chain.block import parse_block, parse_tx
from stratum_pool.chain.coinbase import build_coinbase
from stratum_pool.chain.encoding import bip34_height_push
from stratum_pool.chain.pow import sha256d
from stratum_pool.coins import get_coin
from stratum_pool.jobs.builder import assemble_block, make_job, template_from_gbt

RBCH = get_coin("bitcoincash", "regtest")
PAY = address_to_script(cashaddr.encode("bchreg", 0, bytes(range(20))), RBCH)


@pytest.mark.parametrize("height", [1, 16, 17, 300, 70000, 2**31 - 1])
@pytest.mark.parametrize("tag", [b"", b"/x/", b"/stratum-pool/"])
@pytest.mark.parametrize("extranonce_size", [2, 4, 8, 12])
def test_coinbase_is_padded_to_the_minimum_size_exactly(height: int, tag: bytes, extranonce_size: int) -> None:
    plain = build_coinbase(height, [(5_000_000_000, PAY)], extranonce_size, pool_tag=tag)
    padded = build_coinbase(height, [(5_000_000_000, PAY)], extranonce_size, pool_tag=tag, min_size=100)
    size = len(plain[0]) + extranonce_size + len(plain[1])
    raw = padded[0] + bytes(extranonce_size) + padded[1]
    assert len(raw) == max(size, 100)
    assert len(padded[0]) == len(plain[0])  # the extranonce stays where it was (only the scriptSig length grew)
    tx = parse_tx(raw)  # a well-formed transaction: the scriptSig length covers the padding
    assert tx.raw == raw
    script_sig = raw[42:42 + raw[41]]
    assert script_sig.startswith(bip34_height_push(height))
    if size < 100:
        assert script_sig.endswith(bytes((100 - size - 1,)) + bytes(100 - size - 1))
    else:
        assert padded == plain


def _gbt(transactions: list[dict[str, Any]]) -> dict[str, Any]:
    # what bcash 1.1.1 answers: no rules, no default_witness_commitment, transactions without "hash"
    return {"version": 0x20000000, "previousblockhash": "00" * 32, "coinbasevalue": 5_000_000_000, "bits": "207fffff",
            "height": 5, "curtime": 1_700_000_000, "mintime": 1_699_999_000, "rules": [], "transactions": transactions,
            "longpollid": "00" * 36, "sizelimit": 32_000_000}


def test_a_template_gives_no_witness_and_keeps_the_canonical_order() -> None:
    # two transactions of 100 bytes each in ascending txid order, as the template lists them
    txs = sorted((bytes([1, 0, 0, 0, 1]) + bytes([i]) * 36 + b"\x00\xff\xff\xff\xff\x01" + bytes(8) + b"\x2c"
                  + bytes(44) + bytes(4) for i in (7, 9)), key=lambda d: sha256d(d)[::-1])
    entries = [{"data": d.hex(), "txid": sha256d(d)[::-1].hex(), "depends": [], "fee": 0, "sigops": 0,
                "size": len(d)} for d in txs]
    gbt = _gbt(entries)
    gbt["default_witness_commitment"] = "6a24aa21a9ed" + "00" * 32  # even if a daemon offered one
    template = template_from_gbt(gbt, RBCH)
    assert template.witness_commitment is None
    job = make_job(template, "1", [(template.coinbase_value, PAY)], 8, b"", True)
    block = assemble_block(job, bytes(4), bytes(4), bytes(80))
    parsed = parse_block(block)
    assert [t.raw for t in parsed.txs[1:]] == txs  # the template's order, untouched
    assert all(t.raw == t.raw_nowitness for t in parsed.txs)  # no witness anywhere
    assert len(parsed.txs[0].raw) >= 100


def test_a_template_asking_for_coinbase_outputs_is_refused_not_mined() -> None:
    # the shape of Bitcoin ABC's (eCash) template: outputs the coinbase must pay, not added by this pool yet
    gbt = _gbt([])
    gbt["coinbasetxn"] = {"minerfund": {"addresses": ["ecregtest:prfhcnyqnl5cgrnmlfmms675w93ld7mvvq9jcw0zsn"],
                                        "minimumvalue": 200_000_000},
                          "stakingrewards": {"payoutscript": {"hex": "76a914" + "00" * 20 + "88ac"},
                                             "minimumvalue": 500_000_000}}
    with pytest.raises(ValueError, match="pay minerfund, stakingrewards, which this pool does not add yet: "
                                         "ecash-regtest blocks would be refused"):
        template_from_gbt(gbt, get_coin("ecash", "regtest"))
    gbt["coinbasetxn"] = {"data": "00"}  # BIP22's coinbasetxn (a transaction), no outputs asked for
    assert template_from_gbt(gbt, get_coin("ecash", "regtest")).witness_commitment is None
