"""Merkle trees over transaction hashes, and the coinbase branch Stratum miners fold their coinbase into.

All hashes are in internal order. Odd levels duplicate their last hash (Bitcoin's rule; the CVE-2012-2459
ambiguity is a validation matter for full nodes, not for building work).
"""

from __future__ import annotations

from collections.abc import Sequence

from stratum_pool.chain.pow import sha256d

try:  # the Cython extension built from native/ by setup.py
    from stratum_pool import _native
except ImportError:  # pragma: no cover - exercised only when the extension is not built
    _native = None  # type: ignore[assignment]


def _check_hashes(hashes: Sequence[bytes]) -> None:
    for h in hashes:
        if len(h) != 32:
            raise ValueError(f"merkle leaves must be 32-byte hashes, got {len(h)} bytes")


def merkle_root(hashes_internal: Sequence[bytes]) -> bytes:
    """The merkle root of ``hashes_internal`` (all leaves, coinbase first for a block)."""
    if not hashes_internal:
        raise ValueError("merkle root of no hashes is undefined")
    _check_hashes(hashes_internal)
    level = list(hashes_internal)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def merkle_branch_py(txids: Sequence[bytes]) -> list[bytes]:
    """The branch for the leaf at index 0 (the coinbase), given the OTHER leaves: the pure-Python reference of
    :func:`merkle_branch`.

    ``txids`` are the non-coinbase txids in block order (internal order), exactly as getblocktemplate lists
    its transactions; the coinbase is not part of the argument because it is not known yet. The result has
    one hash per tree level (empty when the block holds only the coinbase); fold it with
    :func:`root_from_branch`.
    """
    _check_hashes(txids)
    branch: list[bytes] = []
    # ``rest`` is a level without its first element (the one on the coinbase's path, unknown here)
    rest = list(txids)
    while rest:
        branch.append(rest[0])
        # pair up the level (coinbase-path element + rest); the first pair is on the path, skip it
        above = rest[1:]
        if len(above) % 2:
            above.append(above[-1])
        rest = [sha256d(above[i] + above[i + 1]) for i in range(0, len(above), 2)]
    return branch


def split_hashes(packed: bytes) -> tuple[bytes, ...]:
    """Concatenated 32-byte hashes, one by one."""
    return tuple(packed[i : i + 32] for i in range(0, len(packed), 32))


def merkle_branch_packed(leaves: bytes) -> bytes:
    """:func:`merkle_branch` over ``leaves`` given as concatenated 32-byte hashes, the branch concatenated
    too: the form the new-block path has them in (native when the extension is built; thousands of hashes of
    a mainnet template in a fraction of a millisecond)."""
    if _native is not None:
        return _native.merkle_branch(leaves)
    if len(leaves) % 32:
        raise ValueError(f"leaves must be concatenated 32-byte hashes, got {len(leaves)} bytes")
    return b"".join(merkle_branch_py(split_hashes(leaves)))


def merkle_branch(txids: Sequence[bytes]) -> list[bytes]:
    """The branch for the leaf at index 0 (the coinbase), given the OTHER leaves (see :func:`merkle_branch_py`,
    which this equals)."""
    _check_hashes(txids)
    return list(split_hashes(merkle_branch_packed(b"".join(txids))))


def root_from_branch(leaf: bytes, branch: Sequence[bytes]) -> bytes:
    """The merkle root reached from the index-0 ``leaf`` by hashing in each branch hash on the right."""
    h = leaf
    for sibling in branch:
        h = sha256d(h + sibling)
    return h
