"""Stratum jobs rebuilt from four real Bitcoin mainnet blocks, with the "submission" that solves each.

Import from a test module as::

    from mainnet import MAINNET_HEIGHTS, mainnet_case

This works because tests/ has no ``__init__.py`` and no conftest.py sets an import mode: pytest's default
``prepend`` import mode puts the test file's directory (tests/) on ``sys.path``. (``from tests.mainnet
import ...`` only works when /work/main itself is on ``sys.path``, e.g. under ``python -m pytest``, so
prefer the plain form.)

How a case is built (facts about the blocks: tests/data/mainnet/README.md):

* the template comes from a synthetic getblocktemplate answer made out of the block (so
  ``template_from_gbt`` is exercised too): base version, prevhash, every non-coinbase transaction with
  its txid/wtxid, the coinbase's output total as ``coinbasevalue``, bits, the header time as curtime and
  mintime, and the coinbase's witness commitment output as ``default_witness_commitment``;
* coinb1/coinb2 are the real coinbase (txid serialization, no witness) cut around the 8 bytes right after
  the BIP34 height push: the first 4 are ``extranonce1``, the next 4 ``extranonce2``;
* ``ntime``/``nonce`` come from the header; for block 702861 the job's version is the base 0x20000004 and
  the miner "submits" ``version_bits`` 0x1fffe000 (BIP310 mask 0x1fffe000), giving header version
  0x3fffe004. ``version`` is the header version to feed check_share in every case.

Submitting ``(extranonce1, extranonce2, ntime, nonce, version_bits)`` on ``job`` must reproduce the real
header (hash ``expected_hash_display``), and ``assemble_block`` must give back ``raw_block`` exactly (the
real blocks' coinbase witness reserved values are all zero, which is what assemble_block uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from stratum_pool.chain.block import WITNESS_COMMITMENT_HEADER, ParsedBlock, parse_block
from stratum_pool.chain.encoding import read_bip34_height, read_u64le, read_varint
from stratum_pool.coins import COINS, Coin
from stratum_pool.jobs.builder import notify_prefix, template_from_gbt
from stratum_pool.jobs.job import Job

DATA_DIR = Path(__file__).parent / "data" / "mainnet"
MAINNET_HEIGHTS: tuple[int, ...] = (277647, 540107, 574200, 702861)
EXPECTED_HASHES_DISPLAY: dict[int, str] = {
    277647: "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8",
    540107: "00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab",
    574200: "0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2",
    702861: "000000000000000000000c835b2adcaedc20fdf6ee440009c249452c726dafae",
}
# Block 702861 was mined with BIP310 version rolling: base version 0x20000004, rolled bits in the mask.
VERSION_ROLLING_MASK = 0x1FFFE000
BASE_VERSIONS: dict[int, int] = {702861: 0x20000004}
EXTRANONCE1_SIZE = 4
EXTRANONCE2_SIZE = 4

# Offset of the scriptSig in a coinbase (txid serialization): version(4) + input count(1) + outpoint(36)
# + scriptSig length(1, always one byte since a coinbase scriptSig is at most 100 bytes)
_SCRIPT_SIG_OFFSET = 4 + 1 + 36 + 1


@dataclass(frozen=True, slots=True)
class MainnetCase:
    height: int
    coin: Coin
    job: Job
    extranonce1: bytes
    extranonce2: bytes
    ntime: int
    nonce: int
    version: int  # the header version (job version with the rolled bits applied)
    version_bits: int | None  # what a miner submits with version rolling (BIP310), None when not rolled
    expected_hash_display: str
    raw_block: bytes
    block: ParsedBlock

    @property
    def expected_hash_internal(self) -> bytes:
        return bytes.fromhex(self.expected_hash_display)[::-1]

    @property
    def header(self) -> bytes:
        return self.raw_block[:80]


def read_block(height: int) -> bytes:
    return (DATA_DIR / f"block-{height}.raw").read_bytes()


def _coinbase_outputs(coinbase_nowitness: bytes) -> list[tuple[int, bytes]]:
    script_len, offset = read_varint(coinbase_nowitness, _SCRIPT_SIG_OFFSET - 1)
    offset += script_len + 4  # scriptSig, sequence
    count, offset = read_varint(coinbase_nowitness, offset)
    outputs = []
    for _ in range(count):
        value, offset = read_u64le(coinbase_nowitness, offset)
        length, offset = read_varint(coinbase_nowitness, offset)
        outputs.append((value, coinbase_nowitness[offset : offset + length]))
        offset += length
    return outputs


def gbt_from_block(block: ParsedBlock, height: int, base_version: int) -> dict[str, Any]:
    """A getblocktemplate-shaped answer that the block could have been mined from."""
    outputs = _coinbase_outputs(block.txs[0].raw_nowitness)
    commitments = [script for value, script in outputs if script.startswith(WITNESS_COMMITMENT_HEADER)]
    gbt: dict[str, Any] = {
        "version": base_version,
        "previousblockhash": block.prevhash[::-1].hex(),
        "transactions": [
            {"data": tx.raw.hex(), "txid": tx.txid[::-1].hex(), "hash": tx.wtxid[::-1].hex()}
            for tx in block.txs[1:]
        ],
        "coinbasevalue": sum(value for value, _ in outputs),
        "bits": f"{block.bits:08x}",
        "curtime": block.time,
        "mintime": block.time,
        "height": height,
        "longpollid": f"mainnet-{height}",
    }
    if commitments:
        # BIP141: when several outputs match, the last one is the commitment
        gbt["default_witness_commitment"] = commitments[-1].hex()
    return gbt


@cache
def mainnet_case(height: int) -> MainnetCase:
    """The job and submission for the real mainnet block at ``height`` (one of MAINNET_HEIGHTS)."""
    if height not in EXPECTED_HASHES_DISPLAY:
        raise KeyError(f"no mainnet block {height}; have {MAINNET_HEIGHTS}")
    coin = COINS["bitcoin-mainnet"]
    raw = read_block(height)
    block = parse_block(raw)
    base_version = BASE_VERSIONS.get(height, block.version)
    if base_version == block.version:
        version_bits = None
    else:
        version_bits = block.version & VERSION_ROLLING_MASK
        assert (base_version & ~VERSION_ROLLING_MASK) | version_bits == block.version

    coinbase = block.txs[0].raw_nowitness
    script_sig_len = coinbase[_SCRIPT_SIG_OFFSET - 1]
    script_sig = coinbase[_SCRIPT_SIG_OFFSET : _SCRIPT_SIG_OFFSET + script_sig_len]
    bip34_height, height_push_len = read_bip34_height(script_sig)
    assert bip34_height == height, (bip34_height, height)
    start = _SCRIPT_SIG_OFFSET + height_push_len
    mid = start + EXTRANONCE1_SIZE
    end = mid + EXTRANONCE2_SIZE
    assert end <= _SCRIPT_SIG_OFFSET + script_sig_len, "scriptSig too short for the extranonce cut"

    template = template_from_gbt(gbt_from_block(block, height, base_version), coin)
    job_id = f"mainnet-{height}"
    coinb1, coinb2 = coinbase[:start], coinbase[end:]
    job = Job(
        job_id=job_id,
        template=template,
        coinb1=coinb1,
        coinb2=coinb2,
        branch=b"".join(template.merkle_branch),
        clean_jobs=True,
        notify_prefix=notify_prefix(job_id, template, coinb1, coinb2),
    )
    return MainnetCase(
        height=height,
        coin=coin,
        job=job,
        extranonce1=coinbase[start:mid],
        extranonce2=coinbase[mid:end],
        ntime=block.time,
        nonce=block.nonce,
        version=block.version,
        version_bits=version_bits,
        expected_hash_display=EXPECTED_HASHES_DISPLAY[height],
        raw_block=raw,
        block=block,
    )
