"""The coinbase transaction, split around the extranonce area for Stratum (coinb1 | extranonce | coinb2).

The split halves are the *txid* serialization (no segwit marker, flag or witness): miners hash
``coinb1 + extranonce1 + extranonce2 + coinb2`` to get the coinbase txid at the bottom of the merkle tree.
The witness (the reserved value) is added only when the block is assembled (``chain/block.py``).

scriptSig layout::

    <BIP34 height push> <push opcode for N bytes> <extranonce1 + extranonce2: N bytes> [<push of pool_tag>]
    '-------------------- end of coinb1 -------------'                               '-- start of coinb2 --'

The extranonce sits right after the height so that its offset does not depend on the tag's length, and
it is a proper data push so the scriptSig stays a well-formed script (push-only, as explorers expect).
The pool tag is pushed after it and omitted entirely when empty. A coin with a minimum transaction size
(Bitcoin Cash: 100 bytes) gets one more push of zero bytes after the tag when the coinbase would be smaller.
"""

from __future__ import annotations

from collections.abc import Sequence

from stratum_pool.chain.encoding import bip34_height_push, push_data, push_header, u32le, u64le, varint

MAX_MONEY = 84_000_000 * 100_000_000  # Litecoin's supply cap, the larger of our coins'
_SCRIPT_SIG_MIN = 2  # consensus limits on a coinbase scriptSig (bad-cb-length)
_SCRIPT_SIG_MAX = 100
_NULL_OUTPOINT = b"\x00" * 32 + b"\xff\xff\xff\xff"
_SEQUENCE_FINAL = b"\xff\xff\xff\xff"
PPM = 1_000_000


def _output(value: int, script: bytes) -> bytes:
    if not 0 <= value <= MAX_MONEY:
        raise ValueError(f"output value {value} is out of range")
    return u64le(value) + varint(len(script)) + script


def build_coinbase(
    height: int,
    outputs: Sequence[tuple[int, bytes]],
    extranonce_size: int,
    pool_tag: bytes = b"",
    witness_commitment: bytes | None = None,
    lock_time: int = 0,
    tx_version: int = 1,
    min_size: int = 0,
) -> tuple[bytes, bytes]:
    """``(coinb1, coinb2)`` of the coinbase paying ``outputs`` (value in base units, scriptPubKey).

    ``extranonce_size`` is ``len(extranonce1) + extranonce2_size``. ``witness_commitment`` is the
    commitment output's scriptPubKey (getblocktemplate's ``default_witness_commitment``); it is appended
    as a zero-value output after ``outputs``. ``min_size`` is the coin's minimum transaction size: a
    smaller coinbase is padded in its scriptSig. ValueError when the scriptSig falls outside 2..100 bytes.
    """
    if extranonce_size < 1:
        raise ValueError("extranonce_size must be at least 1 byte")
    if not outputs:
        raise ValueError("a coinbase needs at least one output")
    height_push = bip34_height_push(height)
    extranonce_push = push_header(extranonce_size)
    tag_push = push_data(pool_tag) if pool_tag else b""
    all_outputs = list(outputs)
    if witness_commitment is not None:
        all_outputs.append((0, witness_commitment))
    script_sig_len = len(height_push) + len(extranonce_push) + extranonce_size + len(tag_push)
    # the size without padding: version, 1 input (outpoint, scriptSig length, scriptSig, sequence), outputs,
    # lock time; a padding of n bytes is pushed with 1 + (n - 1) bytes (an OP_0 when n = 1)
    size = 4 + 1 + 36 + len(varint(script_sig_len)) + script_sig_len + 4 + len(varint(len(all_outputs))) + sum(
        8 + len(varint(len(script))) + len(script) for _, script in all_outputs) + 4
    if size < min_size:
        pad = min_size - size
        tag_push += push_data(bytes(pad - 1))  # small enough for a one-byte push opcode and a 1-byte varint
        script_sig_len += pad
    if not _SCRIPT_SIG_MIN <= script_sig_len <= _SCRIPT_SIG_MAX:
        raise ValueError(
            f"coinbase scriptSig would be {script_sig_len} bytes; consensus allows "
            f"{_SCRIPT_SIG_MIN}..{_SCRIPT_SIG_MAX} (shorten the pool tag or the extranonce)"
        )
    coinb1 = b"".join(
        (
            u32le(tx_version),
            b"\x01",  # one input
            _NULL_OUTPOINT,
            varint(script_sig_len),
            height_push,
            extranonce_push,
        )
    )
    coinb2 = b"".join(
        (
            tag_push,
            _SEQUENCE_FINAL,
            varint(len(all_outputs)),
            *(_output(value, script) for value, script in all_outputs),
            u32le(lock_time),
        )
    )
    return coinb1, coinb2


def solo_outputs(
    coinbase_value: int,
    payout_script: bytes,
    fee_script: bytes | None = None,
    fee_ppm: int = 0,
) -> list[tuple[int, bytes]]:
    """Outputs paying ``coinbase_value`` to the miner minus a pool fee of ``fee_ppm`` parts per million.

    The fee is rounded down (in the miner's favour) with integer arithmetic; the outputs always sum to
    exactly ``coinbase_value``. No fee output is made when the fee rounds to zero.
    """
    if coinbase_value < 0:
        raise ValueError("coinbase value cannot be negative")
    if not 0 <= fee_ppm <= PPM:
        raise ValueError(f"fee_ppm must be in 0..{PPM}, got {fee_ppm}")
    fee = coinbase_value * fee_ppm // PPM
    if fee == 0:
        return [(coinbase_value, payout_script)]
    if fee_script is None:
        raise ValueError("a pool fee needs a fee_script to pay it to")
    return [(coinbase_value - fee, payout_script), (fee, fee_script)]
