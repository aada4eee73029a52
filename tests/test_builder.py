"""Coinbase building, getblocktemplate parsing, jobs, and block assembly (end to end on regtest targets)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mainnet import mainnet_case

from stratum_pool.chain.address import address_to_script
from stratum_pool.chain.block import (
    parse_block,
    parse_tx,
    witness_commitment_script,
    witness_merkle_root,
)
from stratum_pool.chain.coinbase import build_coinbase, solo_outputs
from stratum_pool.chain.encoding import bip34_height_push, prevhash_from_stratum, read_bip34_height
from stratum_pool.chain.merkle import merkle_root
from stratum_pool.chain.pow import check_share_py, pow_hash_py, sha256d
from stratum_pool.chain.target import bits_to_target, hash_to_int
from stratum_pool.coins import COINS
from stratum_pool.jobs.builder import assemble_block, block_hash, make_job, template_from_gbt
from stratum_pool.jobs.job import Job, Template

RBTC = COINS["bitcoin-regtest"]
RLTC = COINS["litecoin-regtest"]
PAYOUT = address_to_script("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", RBTC)
FEE = bytes.fromhex("76a914" + "11" * 20 + "88ac")
SCRIPT_SIG_OFFSET = 4 + 1 + 36 + 1


def _outputs(tx_nowitness: bytes) -> list[tuple[int, bytes]]:
    """(value, script) pairs of a one-input transaction in txid serialization."""
    offset = SCRIPT_SIG_OFFSET + tx_nowitness[SCRIPT_SIG_OFFSET - 1] + 4
    count = tx_nowitness[offset]
    offset += 1
    outputs = []
    for _ in range(count):
        value = int.from_bytes(tx_nowitness[offset : offset + 8], "little")
        length = tx_nowitness[offset + 8]
        outputs.append((value, tx_nowitness[offset + 9 : offset + 9 + length]))
        offset += 9 + length
    return outputs


# ----------------------------------------------------------------------------------------------- coinbase


@pytest.mark.parametrize("height", [0, 1, 16, 17, 500, 702861, 2**31 - 1])
@pytest.mark.parametrize("tag", [b"", b"/stratum-pool/"])
@pytest.mark.parametrize("commitment", [None, witness_commitment_script(b"\x11" * 32)])
def test_build_coinbase_layout(height: int, tag: bytes, commitment: bytes | None) -> None:
    outputs = [(5_000_000_000 - 123, PAYOUT), (123, FEE)]
    coinb1, coinb2 = build_coinbase(height, outputs, 8, pool_tag=tag, witness_commitment=commitment)
    extranonce = bytes(range(1, 9))
    raw = coinb1 + extranonce + coinb2
    tx = parse_tx(raw)
    assert tx.raw == tx.raw_nowitness == raw  # no segwit marker in the txid serialization
    assert raw[:4] == b"\x01\x00\x00\x00"
    assert raw[4] == 1 and raw[5:41] == b"\x00" * 32 + b"\xff" * 4
    script_sig = raw[SCRIPT_SIG_OFFSET : SCRIPT_SIG_OFFSET + raw[SCRIPT_SIG_OFFSET - 1]]
    assert read_bip34_height(script_sig)[0] == height
    assert script_sig.startswith(bip34_height_push(height) + b"\x08" + extranonce)
    assert coinb1.endswith(bip34_height_push(height) + b"\x08")
    if tag:
        assert script_sig.endswith(bytes((len(tag),)) + tag)
    expected = outputs + ([(0, commitment)] if commitment else [])
    assert _outputs(raw) == expected
    assert raw[-4:] == b"\x00\x00\x00\x00"


def test_build_coinbase_script_sig_limits() -> None:
    outputs = [(1, PAYOUT)]
    # height 17: 2-byte push; extranonce 8 + 1 opcode; tag push PUSHDATA1 (2) + n: total 13 + n <= 100
    build_coinbase(17, outputs, 8, pool_tag=b"x" * 87)
    with pytest.raises(ValueError, match="scriptSig"):
        build_coinbase(17, outputs, 8, pool_tag=b"x" * 88)
    with pytest.raises(ValueError):
        build_coinbase(17, outputs, 0)
    with pytest.raises(ValueError):
        build_coinbase(17, [], 8)
    with pytest.raises(ValueError):
        build_coinbase(17, [(-1, PAYOUT)], 8)
    # height 1 (OP_1) with a 1-byte extranonce: OP_1, push opcode, extranonce = 3 bytes
    coinb1, _ = build_coinbase(1, outputs, 1)
    assert coinb1[SCRIPT_SIG_OFFSET - 1] == 3


def test_build_coinbase_lock_time_and_version() -> None:
    coinb1, coinb2 = build_coinbase(500, [(1, PAYOUT)], 4, lock_time=499, tx_version=2)
    assert coinb1[:4] == b"\x02\x00\x00\x00"
    assert coinb2[-4:] == (499).to_bytes(4, "little")


@given(
    st.integers(min_value=0, max_value=21_000_000 * 10**8),
    st.integers(min_value=0, max_value=1_000_000),
)
def test_solo_outputs_sum_exactly(value: int, fee_ppm: int) -> None:
    outputs = solo_outputs(value, PAYOUT, FEE, fee_ppm)
    assert sum(v for v, _ in outputs) == value
    assert outputs[0][1] == PAYOUT
    fee = value * fee_ppm // 1_000_000
    if fee:
        assert outputs == [(value - fee, PAYOUT), (fee, FEE)]
    else:
        assert outputs == [(value, PAYOUT)]


def test_solo_outputs_errors() -> None:
    assert solo_outputs(5_000_000_000, PAYOUT) == [(5_000_000_000, PAYOUT)]
    assert solo_outputs(5_000_000_000, PAYOUT, FEE, 10_000) == [(4_950_000_000, PAYOUT), (50_000_000, FEE)]
    with pytest.raises(ValueError):
        solo_outputs(5_000_000_000, PAYOUT, None, 10_000)
    with pytest.raises(ValueError):
        solo_outputs(5_000_000_000, PAYOUT, FEE, 1_000_001)
    with pytest.raises(ValueError):
        solo_outputs(-1, PAYOUT)


# ---------------------------------------------------------------------------------------- templates


def _segwit_txs(count: int) -> list[bytes]:
    """Real transactions from block 540107, witness and legacy alternating, used as template contents."""
    txs = mainnet_case(540107).block.txs[1:]
    witness = [tx.raw for tx in txs if tx.raw != tx.raw_nowitness]
    legacy = [tx.raw for tx in txs if tx.raw == tx.raw_nowitness]
    return [tx for pair in zip(witness, legacy, strict=False) for tx in pair][:count]


def _gbt(txs: list[bytes], *, with_ids: bool = True, commitment: bool = True, **extra: Any) -> dict[str, Any]:
    entries = []
    for data in txs:
        tx = parse_tx(data)
        entry: dict[str, Any] = {"data": data.hex(), "fee": 100, "depends": [], "weight": 4 * len(data)}
        if with_ids:
            entry["txid"] = tx.txid[::-1].hex()
            entry["hash"] = tx.wtxid[::-1].hex()
        entries.append(entry)
    gbt: dict[str, Any] = {
        "capabilities": ["proposal"],
        "version": 0x20000000,
        "rules": ["csv", "!segwit", "taproot"],
        "previousblockhash": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
        "transactions": entries,
        "coinbasevalue": 5_000_012_345,
        "longpollid": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e22064",
        "target": "7fffff0000000000000000000000000000000000000000000000000000000000",
        "mintime": 1_700_000_000,
        "curtime": 1_700_000_123,
        "bits": "207fffff",
        "height": 101,
    }
    if commitment:
        wtxids = [parse_tx(d).wtxid for d in txs]
        gbt["default_witness_commitment"] = witness_commitment_script(witness_merkle_root(wtxids)).hex()
    gbt.update(extra)
    return gbt


def test_template_from_gbt() -> None:
    txs = _segwit_txs(7)
    gbt = _gbt(txs)
    template = template_from_gbt(gbt, RBTC, received_at=12.5)
    assert isinstance(template, Template)
    assert template.coin is RBTC
    assert template.prevhash_hex == gbt["previousblockhash"]
    assert template.version == 0x20000000
    assert template.nbits == 0x207FFFFF
    assert template.target == bits_to_target(0x207FFFFF)
    assert (template.curtime, template.mintime, template.height) == (1_700_000_123, 1_700_000_000, 101)
    assert template.coinbase_value == 5_000_012_345
    assert template.transactions == tuple(txs)
    assert template.txids == tuple(parse_tx(t).txid for t in txs)
    assert template.witness_commitment == bytes.fromhex(gbt["default_witness_commitment"])
    assert template.mweb is None
    assert template.longpollid == gbt["longpollid"]
    assert template.received_at == 12.5
    assert len(template.merkle_branch) == 3


def test_template_ids_computed_when_absent() -> None:
    txs = _segwit_txs(7)
    with_ids = template_from_gbt(_gbt(txs), RBTC)
    without = template_from_gbt(_gbt(txs, with_ids=False), RBTC)
    assert without == with_ids


def test_template_commitment_computed_when_absent() -> None:
    txs = _segwit_txs(7)
    assert any(parse_tx(t).txid != parse_tx(t).wtxid for t in txs)
    given_commitment = template_from_gbt(_gbt(txs), RBTC)
    computed = template_from_gbt(_gbt(txs, commitment=False), RBTC)
    assert computed.witness_commitment == given_commitment.witness_commitment
    # no witness transactions and no commitment field: no commitment output
    legacy = [tx.raw for tx in mainnet_case(277647).block.txs[1:4]]
    assert template_from_gbt(_gbt(legacy, commitment=False), RBTC).witness_commitment is None


def test_template_unusual_entries_take_the_careful_way() -> None:
    txs = _segwit_txs(5)
    plain = template_from_gbt(_gbt(txs), RBTC)
    gbt = _gbt(txs)
    entries = gbt["transactions"]
    entries[1]["data"] = " ".join(entries[1]["data"][i : i + 8] for i in range(0, len(entries[1]["data"]), 8))
    entries[2]["txid"] = ""  # computed from the data
    del entries[3]["txid"]
    assert template_from_gbt(gbt, RBTC) == plain


@pytest.mark.parametrize(("index", "key", "value", "message"), [
    (2, "data", "zz", r"'transactions\[2\].data' is not valid hex"),
    (1, "data", 17, r"'transactions\[1\].data' is not a hex string"),
    (0, "data", None, r"'transactions\[0\].data' is not a hex string"),
    (3, "txid", "ab" * 31, "64 hex digits"),
    (3, "txid", "xy" * 32, "non-hexadecimal"),
])
def test_template_bad_transaction_entries(index: int, key: str, value: object, message: str) -> None:
    gbt = _gbt(_segwit_txs(5))
    if value is None:
        del gbt["transactions"][index][key]
    else:
        gbt["transactions"][index][key] = value
    with pytest.raises(ValueError, match=message):
        template_from_gbt(gbt, RBTC)


def test_template_wtxids_only_when_the_commitment_is_computed() -> None:
    txs = _segwit_txs(7)
    given = _gbt(txs)
    for entry in given["transactions"]:
        del entry["hash"]  # wtxids are not needed beside the daemon's commitment
    assert template_from_gbt(given, RBTC) == template_from_gbt(_gbt(txs), RBTC)
    computed = _gbt(txs, commitment=False)
    for entry in computed["transactions"]:
        del entry["hash"]  # computed from the data (sha256d of it as given)
    assert template_from_gbt(computed, RBTC) == template_from_gbt(_gbt(txs), RBTC)


def test_template_target_from_bits_when_absent() -> None:
    gbt = _gbt([])
    del gbt["target"]
    del gbt["mintime"]
    template = template_from_gbt(gbt, RBTC)
    assert template.target == bits_to_target(0x207FFFFF)
    assert template.mintime == template.curtime
    assert template.merkle_branch == ()


@pytest.mark.parametrize(
    ("field", "value"),
    [("height", "101"), ("version", True), ("bits", "7fffff"), ("previousblockhash", "00"), ("mweb", "zz")],
)
def test_template_bad_fields(field: str, value: object) -> None:
    with pytest.raises(ValueError):
        gbt = _gbt([])
        gbt[field] = value
        template_from_gbt(gbt, RBTC)


def test_template_missing_field() -> None:
    gbt = _gbt([])
    del gbt["coinbasevalue"]
    with pytest.raises(ValueError, match="coinbasevalue"):
        template_from_gbt(gbt, RBTC)


# ------------------------------------------------------------------------------------ jobs and blocks


def _mine(job: Job, extranonce1: bytes, extranonce2: bytes) -> bytes:
    """Search nonces until the header meets the template's (regtest) target; returns the header."""
    template = job.template
    for nonce in itertools.count():
        header, pow_hash = check_share_py(
            template.coin.algorithm_id,
            job.coinb1,
            extranonce1,
            extranonce2,
            job.coinb2,
            job.branch,
            template.version,
            template.prevhash,
            template.curtime,
            template.nbits,
            nonce,
        )
        if hash_to_int(pow_hash) <= template.target:
            return header
    raise AssertionError("unreachable")


def _check_block(raw: bytes, template: Template, header: bytes, segwit: bool) -> None:
    block = parse_block(raw)
    assert block.header == header
    assert block_hash(header) == sha256d(header)
    assert [tx.raw for tx in block.txs[1:]] == list(template.transactions)
    assert merkle_root([tx.txid for tx in block.txs]) == block.merkle_root
    coinbase = block.txs[0]
    if segwit:
        reserved = coinbase.raw[-36:-4]
        assert reserved == b"\x00" * 32
        root = witness_merkle_root([tx.wtxid for tx in block.txs[1:]])
        assert (0, witness_commitment_script(root, reserved)) in _outputs(coinbase.raw_nowitness)
    else:
        assert coinbase.raw == coinbase.raw_nowitness


@pytest.mark.parametrize("tx_count", [0, 1, 2, 7, 20])
def test_make_job_mine_and_assemble_bitcoin(tx_count: int) -> None:
    template = template_from_gbt(_gbt(_segwit_txs(tx_count), commitment=tx_count > 0), RBTC)
    outputs = solo_outputs(template.coinbase_value, PAYOUT, FEE, 20_000)
    job = make_job(template, "1f", outputs, 8, b"/pool/", clean_jobs=True, payout_key="addr", created_at=3.0)
    assert (job.job_id, job.clean_jobs, job.payout_key, job.created_at) == ("1f", True, "addr", 3.0)
    assert job.branch == b"".join(template.merkle_branch)
    en1, en2 = b"\x00\x00\x00\x2a", b"\xde\xad\xbe\xef"
    header = _mine(job, en1, en2)
    raw = assemble_block(job, en1, en2, header)
    _check_block(raw, template, header, segwit=tx_count > 0)
    assert _outputs(parse_block(raw).txs[0].raw_nowitness)[:2] == outputs


def test_notify_prefix_format() -> None:
    template = template_from_gbt(_gbt(_segwit_txs(3)), RBTC)
    job = make_job(template, "abc", [(template.coinbase_value, PAYOUT)], 8, b"", clean_jobs=False)
    job_id, prevhash, coinb1, coinb2, branch, version, nbits, ntime = job.notify_prefix
    assert job_id == "abc"
    assert isinstance(prevhash, str) and prevhash_from_stratum(prevhash) == template.prevhash
    assert (coinb1, coinb2) == (job.coinb1.hex(), job.coinb2.hex())
    assert branch == [h.hex() for h in template.merkle_branch]
    assert (version, nbits, ntime) == ("20000000", "207fffff", f"{1_700_000_123:08x}")


def test_make_job_refuses_overpaying() -> None:
    template = template_from_gbt(_gbt([]), RBTC)
    with pytest.raises(ValueError, match="more than the coinbase value"):
        make_job(template, "1", [(template.coinbase_value + 1, PAYOUT)], 8, b"", clean_jobs=True)


def test_litecoin_mweb_block() -> None:
    txs = _segwit_txs(3)
    mweb = bytes.fromhex("0102030405060708090a")
    template = template_from_gbt(_gbt(txs, mweb=mweb.hex()), RLTC)
    assert template.mweb == mweb
    job = make_job(template, "2", [(template.coinbase_value, PAYOUT)], 8, b"", clean_jobs=True)
    en1, en2 = b"\x01\x02\x03\x04", b"\x05\x06\x07\x08"
    header = _mine(job, en1, en2)
    assert hash_to_int(pow_hash_py(RLTC.algorithm_id, header)) <= template.target
    raw = assemble_block(job, en1, en2, header)
    assert raw.endswith(txs[-1] + b"\x01" + mweb)
    block = parse_block(raw)
    assert block.mweb == mweb
    _check_block(raw, template, header, segwit=True)


def test_block_hash_is_sha256d_for_every_coin() -> None:
    case = mainnet_case(277647)
    assert block_hash(case.header) == case.expected_hash_internal
    with pytest.raises(ValueError):
        block_hash(b"\x00" * 79)
