"""getblocktemplate answers -> Templates -> Stratum Jobs, and solved jobs -> blocks to submit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from stratum_pool.chain.block import WITNESS_RESERVED_VALUE, parse_tx, serialize_block
from stratum_pool.chain.block import witness_commitment_script as _commitment_script
from stratum_pool.chain.block import witness_merkle_root as _witness_root
from stratum_pool.chain.coinbase import build_coinbase
from stratum_pool.chain.encoding import (
    hex_decode_many,
    internal_from_display,
    internal_from_display_many,
    stratum_prevhash,
)
from stratum_pool.chain.merkle import merkle_branch_packed, split_hashes
from stratum_pool.chain.pow import sha256d
from stratum_pool.chain.target import bits_to_target
from stratum_pool.coins import Coin
from stratum_pool.daemon.gbt import ScannedTransactions
from stratum_pool.jobs.job import Job, Template


def _field(gbt: Mapping[str, Any], name: str) -> Any:
    try:
        return gbt[name]
    except KeyError:
        raise ValueError(f"getblocktemplate answer has no {name!r}") from None


def _int_field(gbt: Mapping[str, Any], name: str) -> int:
    value = _field(gbt, name)
    # bool is an int subclass; a JSON true in a number field is a daemon bug, not the number 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"getblocktemplate {name!r} is not an integer: {value!r}")
    return value


def _hex_field(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"getblocktemplate {name!r} is not a hex string: {value!r}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"getblocktemplate {name!r} is not valid hex") from None


def segwit_active(gbt: Mapping[str, Any]) -> bool:
    """Whether the template's rules include segwit (``"segwit"`` or the must-understand ``"!segwit"``).

    A template without a ``rules`` list (very old daemons) is taken at its word by its commitment.
    """
    rules = gbt.get("rules")
    if rules is None:
        return True
    return any(str(rule).lstrip("!") == "segwit" for rule in rules)


def _transaction_data(entries: Sequence[Mapping[str, Any]]) -> tuple[bytes, ...]:
    """Every transaction's ``data`` as bytes (ValueError naming the first bad one)."""
    try:
        return hex_decode_many([entry["data"] for entry in entries])  # one C call for them all
    except (KeyError, TypeError, ValueError):
        pass
    # something is off (or only unusual, such as whitespace, which bytes.fromhex allows): the careful way
    return tuple(_hex_field(entry.get("data"), f"transactions[{i}].data") for i, entry in enumerate(entries))


def _txids(entries: Sequence[Mapping[str, Any]], transactions: Sequence[bytes]) -> tuple[tuple[bytes, ...], bytes]:
    """Internal-order txids, each and concatenated: the ``txid`` fields, or computed from the data where a
    template has none."""
    try:
        return internal_from_display_many([entry["txid"] for entry in entries])
    except (KeyError, TypeError, ValueError):
        pass
    txids = []
    for entry, data in zip(entries, transactions, strict=True):
        if entry.get("txid"):
            txids.append(internal_from_display(entry["txid"]))
        else:
            # BIP144 marker: a zero where the input count would be (no transaction has zero inputs)
            segwit_serialized = len(data) > 5 and data[4] == 0
            txids.append(parse_tx(data).txid if segwit_serialized else sha256d(data))
    return tuple(txids), b"".join(txids)


def template_from_gbt(gbt: Mapping[str, Any], coin: Coin, received_at: float = 0.0) -> Template:
    """Parse a getblocktemplate answer (bitcoind, litecoind or bcoin) into a Template.

    Each transaction's txid is taken from its ``txid`` field when present and computed from ``data``
    otherwise (never from ``hash``, which is the wtxid on segwit daemons). When a segwit coin's template
    has witness transactions but no ``default_witness_commitment``, the commitment is computed here
    (with the all-zero reserved value that :func:`assemble_block` puts in the coinbase).
    """
    version = _int_field(gbt, "version")
    height = _int_field(gbt, "height")
    coinbase_value = _int_field(gbt, "coinbasevalue")
    curtime = _int_field(gbt, "curtime")
    mintime = _int_field(gbt, "mintime") if "mintime" in gbt else curtime
    prevhash = internal_from_display(_field(gbt, "previousblockhash"))
    nbits_raw = _field(gbt, "bits")
    if not isinstance(nbits_raw, str) or len(nbits_raw) != 8:
        raise ValueError(f"getblocktemplate 'bits' is not 8 hex digits: {nbits_raw!r}")
    nbits = int(nbits_raw, 16)
    target = int(gbt["target"], 16) if gbt.get("target") else bits_to_target(nbits)

    required = gbt.get("coinbasetxn")
    if isinstance(required, Mapping):
        # eCash (Bitcoin ABC) lists outputs its coinbase must pay (miner fund, staking rewards) here; a block
        # without them is refused, so serving such work would waste every hash until the builder adds them
        asked = sorted(k for k, v in required.items() if isinstance(v, Mapping) and v.get("minimumvalue"))
        if asked:
            raise ValueError(f"getblocktemplate asks the coinbase to pay {', '.join(asked)}, which this pool does "
                             f"not add yet: {coin.key} blocks would be refused")
    entries = _field(gbt, "transactions")
    if isinstance(entries, ScannedTransactions):  # decoded from the answer's bytes (daemon.gbt)
        transactions, txids, leaves = entries.data, entries.txids, entries.leaves
    else:
        transactions = _transaction_data(entries)
        txids, leaves = _txids(entries, transactions)

    commitment_hex = gbt.get("default_witness_commitment")
    witness_commitment: bytes | None
    if not coin.segwit or not segwit_active(gbt):
        # A coin without segwit has no witness anywhere (Bitcoin Cash). And bcoin offers a commitment before
        # segwit activates, but a coinbase witness is then refused ("unexpected-witness"): only a template
        # whose rules say segwit gets one.
        witness_commitment = None
    elif commitment_hex:
        witness_commitment = _hex_field(commitment_hex, "default_witness_commitment")
    elif coin.segwit:
        # the wtxids are only needed here (the daemon's commitment is taken as given otherwise); the wtxid
        # is sha256d of the data as given, so it needs no parsing when ``hash`` is absent
        if isinstance(entries, ScannedTransactions):
            wtxids = [wtxid if wtxid is not None else sha256d(data)
                      for wtxid, data in zip(entries.wtxids, transactions, strict=True)]
        else:
            wtxids = [internal_from_display(entry["hash"]) if entry.get("hash") else sha256d(data)
                      for entry, data in zip(entries, transactions, strict=True)]
        has_witness = wtxids != list(txids)
        witness_commitment = (_commitment_script(_witness_root(wtxids), WITNESS_RESERVED_VALUE)
                              if has_witness else None)
    else:
        witness_commitment = None
    mweb_hex = gbt.get("mweb")
    mweb = _hex_field(mweb_hex, "mweb") if mweb_hex else None
    longpollid = gbt.get("longpollid")

    return Template(
        coin=coin,
        height=height,
        prevhash=prevhash,
        version=version,
        nbits=nbits,
        target=target,
        curtime=curtime,
        mintime=mintime,
        coinbase_value=coinbase_value,
        transactions=transactions,
        txids=txids,
        merkle_branch=split_hashes(merkle_branch_packed(leaves)),
        witness_commitment=witness_commitment,
        mweb=mweb,
        longpollid=str(longpollid) if longpollid is not None else None,
        received_at=received_at,
    )


def share_transactions(template: Template, previous: Template) -> Template:
    """``template`` holding the transactions it has in common with ``previous`` (same txid and the same bytes:
    a witness can change under the same txid) as ``previous``'s objects. The manager keeps a few templates
    (``manager.KEEP_TEMPLATES``), refreshed every ~30 s on the same block with mostly the same transactions:
    one copy of each instead of one per template (a mainnet template holds ~1.5 MB of them)."""
    known = dict(zip(previous.txids, zip(previous.txids, previous.transactions, strict=True), strict=True))
    get = known.get
    txids: list[bytes] = []
    transactions: list[bytes] = []
    for txid, data in zip(template.txids, template.transactions, strict=True):
        old = get(txid)
        if old is not None and old[1] == data:
            txid, data = old
        txids.append(txid)
        transactions.append(data)
    return replace(template, txids=tuple(txids), transactions=tuple(transactions))


def notify_prefix(job_id: str, template: Template, coinb1: bytes, coinb2: bytes) -> tuple[object, ...]:
    """mining.notify params without the trailing clean_jobs flag.

    ``(job_id, prevhash, coinb1, coinb2, [branch...], version, nbits, ntime)``: the prevhash in Stratum's
    word-swapped form, the branch hashes as internal-order hex, the numbers as 8 big-endian hex digits.
    """
    return (
        job_id,
        stratum_prevhash(template.prevhash),
        coinb1.hex(),
        coinb2.hex(),
        [h.hex() for h in template.merkle_branch],
        f"{template.version:08x}",
        f"{template.nbits:08x}",
        f"{template.curtime:08x}",
    )


def make_job(
    template: Template,
    job_id: str,
    outputs: Sequence[tuple[int, bytes]],
    extranonce_size: int,
    pool_tag: bytes,
    clean_jobs: bool,
    payout_key: str = "",
    created_at: float = 0.0,
) -> Job:
    """A job paying ``outputs`` (value, scriptPubKey) on ``template``.

    ``outputs`` must sum to at most ``template.coinbase_value`` (ValueError otherwise: the daemon would
    reject the block as paying too much). ``extranonce_size`` is ``len(extranonce1) + extranonce2_size``.
    """
    total = sum(value for value, _ in outputs)
    if total > template.coinbase_value:
        raise ValueError(f"outputs pay {total}, more than the coinbase value {template.coinbase_value}")
    coinb1, coinb2 = build_coinbase(
        template.height,
        outputs,
        extranonce_size,
        pool_tag=pool_tag,
        witness_commitment=template.witness_commitment,
        min_size=template.coin.min_tx_size,  # Bitcoin Cash: bad-txns-undersize below 100 bytes
    )
    return Job(
        job_id=job_id,
        template=template,
        coinb1=coinb1,
        coinb2=coinb2,
        branch=b"".join(template.merkle_branch),
        clean_jobs=clean_jobs,
        payout_key=payout_key,
        created_at=created_at,
        notify_prefix=notify_prefix(job_id, template, coinb1, coinb2),
    )


def assemble_block(
    job: Job,
    extranonce1: bytes,
    extranonce2: bytes,
    header: bytes,
    witness_reserved_value: bytes = WITNESS_RESERVED_VALUE,
) -> bytes:
    """The full block for submitblock: header, coinbase (with the witness reserved value when the template
    commits to witnesses), the template's transactions and, on Litecoin, the MWEB extension block."""
    coinbase = job.coinb1 + extranonce1 + extranonce2 + job.coinb2
    return serialize_block(
        header,
        coinbase,
        job.template.transactions,
        segwit=job.template.witness_commitment is not None,
        witness_reserved_value=witness_reserved_value,
        mweb=job.template.mweb,
    )


def block_hash(header: bytes) -> bytes:
    """The block hash in internal order: sha256d of the header for every coin (scrypt is only the PoW)."""
    if len(header) != 80:
        raise ValueError(f"block header must be 80 bytes, got {len(header)}")
    return sha256d(header)
