"""Block parsing and serialization against real blocks; witness commitments."""

from __future__ import annotations

import pytest
from mainnet import MAINNET_HEIGHTS, mainnet_case, read_block

from stratum_pool.chain.block import (
    WITNESS_COMMITMENT_HEADER,
    block_header,
    coinbase_with_witness,
    parse_block,
    parse_tx,
    serialize_block,
    tx_strip_witness,
    witness_commitment_script,
    witness_merkle_root,
)
from stratum_pool.chain.encoding import varint
from stratum_pool.chain.pow import sha256d

SEGWIT_HEIGHTS = (540107, 574200, 702861)
SEGWIT_TX_COUNTS = {277647: 0, 540107: 104, 574200: 1341, 702861: 2065}
TX_COUNTS = {277647: 213, 540107: 230, 574200: 3315, 702861: 2500}


@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
def test_parse_then_serialize_is_identity(height: int) -> None:
    raw = read_block(height)
    block = parse_block(raw)
    assert len(block.txs) == TX_COUNTS[height]
    # the README's "segwit txs": transactions carrying witness data, the coinbase included
    assert sum(tx.raw != tx.raw_nowitness for tx in block.txs) == SEGWIT_TX_COUNTS[height]
    assert block.header + varint(len(block.txs)) + b"".join(tx.raw for tx in block.txs) == raw
    assert block.mweb is None
    header = block_header(
        block.version, block.prevhash, block.merkle_root, block.time, block.bits, block.nonce
    )
    assert header == block.header


@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
def test_tx_parts(height: int) -> None:
    for tx in mainnet_case(height).block.txs:
        assert parse_tx(tx.raw) == tx
        assert tx_strip_witness(tx.raw) == tx.raw_nowitness
        assert tx.txid == sha256d(tx.raw_nowitness)
        assert tx.wtxid == sha256d(tx.raw)


@pytest.mark.parametrize("height", SEGWIT_HEIGHTS)
def test_witness_commitment_matches_coinbase(height: int) -> None:
    block = mainnet_case(height).block
    coinbase = block.txs[0]
    reserved = coinbase.raw[-4 - 32 : -4]
    root = witness_merkle_root([tx.wtxid for tx in block.txs[1:]])
    script = witness_commitment_script(root, reserved)
    assert script.startswith(WITNESS_COMMITMENT_HEADER) and len(script) == 38
    # the output: value 0, script length 38, script
    assert b"\x00" * 8 + b"\x26" + script in coinbase.raw_nowitness


@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
def test_rebuilt_block(height: int) -> None:
    raw = read_block(height)
    block = parse_block(raw)
    coinbase = block.txs[0]
    segwit = coinbase.raw != coinbase.raw_nowitness
    assert segwit == (height in SEGWIT_HEIGHTS)
    reserved = coinbase.raw[-36:-4] if segwit else b"\x00" * 32
    others = [tx.raw for tx in block.txs[1:]]
    assert serialize_block(block.header, coinbase.raw_nowitness, others, segwit, reserved) == raw
    if segwit:
        assert coinbase_with_witness(coinbase.raw_nowitness, reserved) == coinbase.raw


def test_mweb_is_appended_after_a_present_byte() -> None:
    block = mainnet_case(277647).block
    coinbase = block.txs[0].raw_nowitness
    others = [tx.raw for tx in block.txs[1:3]]
    mweb = bytes.fromhex("abcdef0102")
    raw = serialize_block(block.header, coinbase, others, False, mweb=mweb)
    assert raw.endswith(others[-1] + b"\x01" + mweb)
    parsed = parse_block(raw)
    assert parsed.mweb == mweb
    assert len(parsed.txs) == 3


def test_serialize_block_checks_sizes() -> None:
    with pytest.raises(ValueError):
        serialize_block(b"\x00" * 79, b"\x00" * 60, [], False)
    with pytest.raises(ValueError):
        serialize_block(b"\x00" * 80, b"\x00" * 60, [], True, witness_reserved_value=b"\x00")
    with pytest.raises(ValueError):
        witness_commitment_script(b"\x00" * 31)


def test_parse_refuses_garbage() -> None:
    raw = read_block(277647)
    with pytest.raises(ValueError):
        parse_block(raw[:-1])
    with pytest.raises(ValueError):
        parse_block(raw + b"\x02")
    with pytest.raises(ValueError):
        parse_block(raw[:50])
    tx = mainnet_case(540107).block.txs[1].raw
    with pytest.raises(ValueError):
        parse_tx(tx + b"\x00")
