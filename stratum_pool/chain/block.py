"""A small transaction/block parser and the block serialization the pool submits.

Parsing is for tests, benchmarks and tools (the pool itself never parses blocks on the hot path). Hashes
are in internal order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from stratum_pool.chain.encoding import read_u32le, read_varint, u32le, varint
from stratum_pool.chain.merkle import merkle_root
from stratum_pool.chain.pow import sha256d

HEADER_SIZE = 80
WITNESS_RESERVED_VALUE = b"\x00" * 32  # what Bitcoin Core's getblocktemplate assumes
# OP_RETURN, push 36 bytes, then BIP141's 4-byte commitment header
WITNESS_COMMITMENT_HEADER = b"\x6a\x24\xaa\x21\xa9\xed"
# Litecoin MWEB (LIP-0003): bit 0x08 of a transaction's flag byte marks MWEB data after the witness
_FLAG_WITNESS = 0x01
_FLAG_MWEB = 0x08


class ParsedTx(NamedTuple):
    raw: bytes  # as serialized in the block (with witness when it has one)
    raw_nowitness: bytes  # the txid serialization
    txid: bytes  # internal order
    wtxid: bytes  # internal order; equals txid for a transaction without witness


@dataclass(frozen=True, slots=True)
class ParsedBlock:
    header: bytes
    version: int
    prevhash: bytes  # internal order
    merkle_root: bytes  # internal order
    time: int
    bits: int
    nonce: int
    txs: tuple[ParsedTx, ...]
    mweb: bytes | None  # Litecoin MWEB extension block (bytes after the 0x01 marker), or None

    @property
    def hash(self) -> bytes:
        """The block hash, internal order (sha256d of the header for every coin)."""
        return sha256d(self.header)


def _skip_bytes(buf: bytes, offset: int, length: int) -> int:
    end = offset + length
    if end > len(buf):
        raise ValueError("truncated transaction")
    return end


def _skip_script(buf: bytes, offset: int) -> int:
    length, offset = read_varint(buf, offset)
    return _skip_bytes(buf, offset, length)


def read_tx(buf: bytes, offset: int = 0) -> tuple[ParsedTx, int]:
    """Parse one transaction at ``offset``; returns it and the offset just past it."""
    start = offset
    _, offset = read_u32le(buf, offset)  # version
    flags = 0
    if offset + 1 < len(buf) and buf[offset] == 0:
        # BIP144: marker 0x00 (an impossible empty input list) then a non-zero flag byte
        flags = buf[offset + 1]
        if flags == 0:
            raise ValueError("transaction has a segwit marker with a zero flag")
        if flags & ~(_FLAG_WITNESS | _FLAG_MWEB):
            raise ValueError(f"transaction has unknown flags {flags:#04x}")
        offset += 2
    body_start = offset
    n_in, offset = read_varint(buf, offset)
    for _ in range(n_in):
        offset = _skip_bytes(buf, offset, 36)  # previous outpoint
        offset = _skip_script(buf, offset)
        offset = _skip_bytes(buf, offset, 4)  # sequence
    n_out, offset = read_varint(buf, offset)
    for _ in range(n_out):
        offset = _skip_bytes(buf, offset, 8)  # value
        offset = _skip_script(buf, offset)
    body_end = offset
    if flags & _FLAG_WITNESS:
        for _ in range(n_in):
            items, offset = read_varint(buf, offset)
            for _ in range(items):
                offset = _skip_script(buf, offset)
    if flags & _FLAG_MWEB:
        # LIP-0003 tx: an optional MWEB part whose structure this parser does not need; not supported
        raise ValueError("parsing Litecoin MWEB transaction bodies is not supported")
    offset = _skip_bytes(buf, offset, 4)  # lock time
    raw = buf[start:offset]
    if flags:
        raw_nowitness = buf[start : start + 4] + buf[body_start:body_end] + buf[offset - 4 : offset]
    else:
        raw_nowitness = raw
    txid = sha256d(raw_nowitness)
    wtxid = sha256d(raw) if flags else txid
    return ParsedTx(raw, raw_nowitness, txid, wtxid), offset


def parse_tx(raw: bytes) -> ParsedTx:
    """Parse exactly one transaction (ValueError when bytes are left over)."""
    tx, end = read_tx(raw, 0)
    if end != len(raw):
        raise ValueError(f"{len(raw) - end} bytes after the transaction")
    return tx


def tx_strip_witness(raw: bytes) -> bytes:
    """The txid serialization of a transaction (witness marker, flag and witness data removed)."""
    return parse_tx(raw).raw_nowitness


def parse_block(raw: bytes) -> ParsedBlock:
    """Parse a serialized block (header, transactions, optional Litecoin MWEB extension block)."""
    if len(raw) < HEADER_SIZE + 1:
        raise ValueError("block is shorter than a header")
    header = raw[:HEADER_SIZE]
    count, offset = read_varint(raw, HEADER_SIZE)
    txs = []
    for _ in range(count):
        tx, offset = read_tx(raw, offset)
        txs.append(tx)
    mweb: bytes | None = None
    if offset < len(raw):
        # Litecoin serializes the MWEB block as an optional pointer: 0x01 then the extension block
        if raw[offset] != 0x01:
            raise ValueError(f"{len(raw) - offset} unexpected bytes after the transactions")
        mweb = raw[offset + 1 :]
    return ParsedBlock(
        header=header,
        version=int.from_bytes(header[0:4], "little"),
        prevhash=header[4:36],
        merkle_root=header[36:68],
        time=int.from_bytes(header[68:72], "little"),
        bits=int.from_bytes(header[72:76], "little"),
        nonce=int.from_bytes(header[76:80], "little"),
        txs=tuple(txs),
        mweb=mweb,
    )


def witness_merkle_root(wtxids: Sequence[bytes]) -> bytes:
    """BIP141 witness root: the merkle root with 32 zero bytes for the coinbase, then ``wtxids``.

    ``wtxids`` are the NON-coinbase transactions' wtxids in block order (what getblocktemplate's ``hash``
    fields give), matching :func:`stratum_pool.chain.merkle.merkle_branch`'s convention.
    """
    return merkle_root([b"\x00" * 32, *wtxids])


def witness_commitment_script(witness_root: bytes, reserved: bytes = WITNESS_RESERVED_VALUE) -> bytes:
    """The scriptPubKey of the coinbase's witness commitment output (value 0)."""
    if len(witness_root) != 32 or len(reserved) != 32:
        raise ValueError("witness root and reserved value must be 32 bytes each")
    return WITNESS_COMMITMENT_HEADER + sha256d(witness_root + reserved)


def coinbase_with_witness(coinbase_tx_nowitness: bytes, witness_reserved_value: bytes) -> bytes:
    """The coinbase as segwit blocks carry it: marker/flag and a one-item witness (the reserved value).

    The coinbase has exactly one input, so the witness is one stack: ``01`` (item count) ``20`` (length)
    followed by the 32-byte reserved value, placed just before the lock time.
    """
    if len(witness_reserved_value) != 32:
        raise ValueError("witness reserved value must be 32 bytes")
    if len(coinbase_tx_nowitness) < 10:
        raise ValueError("coinbase transaction is too short")
    return (
        coinbase_tx_nowitness[:4]
        + b"\x00\x01"
        + coinbase_tx_nowitness[4:-4]
        + b"\x01\x20"
        + witness_reserved_value
        + coinbase_tx_nowitness[-4:]
    )


def serialize_block(
    header: bytes,
    coinbase_tx_nowitness: bytes,
    transactions: Sequence[bytes],
    segwit: bool,
    witness_reserved_value: bytes = WITNESS_RESERVED_VALUE,
    mweb: bytes | None = None,
) -> bytes:
    """The block as submitblock takes it.

    ``transactions`` are the non-coinbase raw transactions exactly as the template gave them. With
    ``segwit`` the coinbase carries the witness reserved value (required whenever the block has a witness
    commitment). ``mweb`` is Litecoin's MWEB extension block, serialized after the transactions behind a
    0x01 "present" byte, as Litecoin Core serializes a block with its HogEx transaction last.
    """
    if len(header) != HEADER_SIZE:
        raise ValueError(f"block header must be {HEADER_SIZE} bytes, got {len(header)}")
    coinbase = coinbase_tx_nowitness
    if segwit:
        coinbase = coinbase_with_witness(coinbase_tx_nowitness, witness_reserved_value)
    parts = [header, varint(1 + len(transactions)), coinbase, *transactions]
    if mweb is not None:
        parts += [b"\x01", mweb]
    return b"".join(parts)


def block_header(
    version: int, prevhash: bytes, merkle_root_internal: bytes, time: int, bits: int, nonce: int
) -> bytes:
    """The 80-byte header from its fields (hashes in internal order)."""
    if len(prevhash) != 32 or len(merkle_root_internal) != 32:
        raise ValueError("prevhash and merkle root must be 32 bytes")
    return u32le(version) + prevhash + merkle_root_internal + u32le(time) + u32le(bits) + u32le(nonce)
