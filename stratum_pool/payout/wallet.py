"""The wallet the payout worker pays from: ``sendmany`` and finding a batch's transaction afterwards.

Works with Bitcoin/Litecoin Core and with bcoin's wallet RPC (served on the wallet port, not the node's).

Finding whether a batch was paid (reconciliation) uses ``listtransactions``, which both have:

* Core: one ``send`` entry per output (address, negative amount, txid, ``comment``). Every sendmany of the
  worker carries a comment naming the batch (:func:`batch_marker`), so a batch's transaction is found
  exactly (same marker, same outputs), and any send without that marker is provably not the batch's.
  Pages go newest-first with ``skip``.
* bcoin 1.0.2: one entry per transaction: ``amount`` = minus the sum of the outputs not owned by the wallet,
  ``address`` = the last such output (outputs are BIP69-sorted); no comment is kept; ``gettransaction``
  fails for any transaction with a send output and ``listsinceblock`` crashes, so this is all there is.
  A send matches a batch when its total equals the batch total and its address is one of the batch's; a
  send that does not match cannot be proved foreign and makes the batch undecidable. Pages are counted
  from the oldest (sorted by wallet time), so the newest page starts at ``getwalletinfo.txcount - n``.

Amounts go to ``sendmany`` as Decimal with 8 decimals (python-bitcoinrpc writes a JSON number through
``float``; amounts that would not survive that exactly are refused before anything is recorded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from stratum_pool.config import CoinSettings, DaemonSettings
from stratum_pool.daemon.rpc import SATOSHIS_PER_COIN, DaemonClient, DaemonEndpoint, to_satoshis

CORE = "core"
BCOIN = "bcoin"
_PAGE = 200
_MAX_ENTRIES = 50_000


class ListingIncomplete(Exception):
    """The wallet's history could not be read far enough back to decide."""


def batch_marker(coin_key: str, batch_id: int, created_at_epoch: float) -> str:
    """The sendmany comment that names one batch (unique even across databases sharing a wallet)."""
    return f"stratum-pool {coin_key} payout batch {batch_id} created {created_at_epoch:.6f}"


def to_rpc_amount(amount: int) -> Decimal:
    """Base units -> an exact 8-decimal Decimal that python-bitcoinrpc sends unchanged (via float)."""
    if amount <= 0:
        raise ValueError(f"amount {amount} is not positive")
    value = (Decimal(amount) / SATOSHIS_PER_COIN).quantize(Decimal("0.00000001"))
    if Decimal(repr(float(value))) != value or to_satoshis(value) != amount:
        raise ValueError(f"amount {amount} cannot be sent exactly as a JSON number")
    return value


@dataclass(frozen=True, slots=True)
class WalletSend:
    """One transaction the wallet sent. ``outputs`` (address -> base units) is exact on Core; on bcoin it is
    None and only ``total`` (sum of outputs to others) and ``address`` (one of them) are known."""

    txid: str
    time: int
    total: int
    address: str | None
    outputs: Mapping[str, int] | None
    comment: str = ""


class PayoutWallet(Protocol):
    """What the payout worker needs of a wallet (:class:`RpcWallet`; tests pass fakes)."""

    @property
    def kind(self) -> str:
        """"core", "bcoin" or "unknown" (not detected yet)."""
        ...

    async def send_many(self, outputs: Mapping[str, int], comment: str) -> str:
        """Pay ``outputs`` (address -> base units) in one transaction; its txid. Raise
        :class:`~stratum_pool.daemon.rpc.RpcError` for a refusal, any other
        :class:`~stratum_pool.daemon.rpc.DaemonError` when the outcome is unknown."""
        ...

    async def sends_since(self, since_epoch: float) -> list[WalletSend]:
        """The wallet's sends whose wallet time is ``>= since_epoch`` (possibly some older ones too).
        Raise :class:`ListingIncomplete` when the history cannot be read back that far."""
        ...


def wallet_endpoint(settings: CoinSettings) -> DaemonEndpoint:
    """The payout wallet's endpoint: ``wallet`` of the coin settings, else the first daemon."""
    d: DaemonSettings = settings.wallet if settings.wallet is not None else settings.daemons[0]
    return DaemonEndpoint(f"wallet:{d.name}", d.url, user=d.user or None, password=d.password or None,
                          cookie_file=d.cookie_file or None, timeout=d.timeout_seconds)


def wallet_client(settings: CoinSettings) -> DaemonClient:
    """A :class:`DaemonClient` over the payout wallet only (close it when done)."""
    return DaemonClient([wallet_endpoint(settings)], settings.coin, retries=1)


class RpcWallet:
    """:class:`PayoutWallet` over a :class:`DaemonClient` whose first endpoint is the wallet.

    ``sendmany`` goes to that one endpoint once: no retry and no failover (a retried send could pay
    twice). ``kind`` ("core" or "bcoin") is found from ``getwalletinfo`` unless given.
    """

    def __init__(self, client: DaemonClient, kind: str | None = None) -> None:
        self.client = client
        self._kind = kind

    @property
    def kind(self) -> str:
        return self._kind or "unknown"

    async def detect(self) -> str:
        if self._kind is None:
            info = await self.client.call("getwalletinfo")
            self._kind = BCOIN if isinstance(info, dict) and "walletid" in info else CORE
        return self._kind

    async def send_many(self, outputs: Mapping[str, int], comment: str) -> str:
        amounts = {address: to_rpc_amount(amount) for address, amount in outputs.items()}
        endpoint = self.client.endpoints[0]
        txid = await self.client.call_endpoint(endpoint, "sendmany", "", amounts, 1, comment)
        return str(txid)

    async def sends_since(self, since_epoch: float) -> list[WalletSend]:
        if await self.detect() == BCOIN:
            return await self._bcoin_sends(since_epoch)
        return await self._core_sends(since_epoch)

    async def _core_sends(self, since_epoch: float) -> list[WalletSend]:
        entries: list[dict[str, Any]] = []
        skip = 0
        while True:
            page = await self.client.call("listtransactions", "*", _PAGE, skip)
            if not isinstance(page, list):
                raise ListingIncomplete(f"listtransactions returned {type(page).__name__}")
            entries.extend(page)
            if len(page) < _PAGE or (page and min(_entry_time(e) for e in page) < since_epoch):
                break
            skip += _PAGE
            if skip >= _MAX_ENTRIES:
                raise ListingIncomplete(f"more than {_MAX_ENTRIES} wallet entries since the batch")
        return group_core_sends(entries, since_epoch)

    async def _bcoin_sends(self, since_epoch: float) -> list[WalletSend]:
        info = await self.client.call("getwalletinfo")
        end = int(info["txcount"])
        entries: list[dict[str, Any]] = []
        while end > 0:
            start = max(0, end - _PAGE)
            page = await self.client.call("listtransactions", "", end - start, start)
            if not isinstance(page, list):
                raise ListingIncomplete(f"listtransactions returned {type(page).__name__}")
            entries.extend(page)
            if not page or min(_entry_time(e) for e in page) < since_epoch:
                break
            end = start
            if len(entries) >= _MAX_ENTRIES:
                raise ListingIncomplete(f"more than {_MAX_ENTRIES} wallet entries since the batch")
        sends = []
        seen: set[str] = set()
        for e in entries:
            txid = str(e.get("txid", "")).lower()
            if e.get("category") != "send" or _entry_time(e) < since_epoch or txid in seen:
                continue
            seen.add(txid)
            address = e.get("address")
            sends.append(WalletSend(txid, _entry_time(e), -to_satoshis(e["amount"]),
                                    None if address is None else str(address), None))
        return sends


def _entry_time(entry: Mapping[str, Any]) -> int:
    return int(entry.get("timereceived", entry.get("time", 0)))


def group_core_sends(entries: Sequence[Mapping[str, Any]], since_epoch: float) -> list[WalletSend]:
    """Core ``listtransactions`` entries -> one :class:`WalletSend` per txid (its ``send`` outputs)."""
    grouped: dict[str, dict[str, Any]] = {}
    for e in entries:
        if e.get("category") != "send" or _entry_time(e) < since_epoch:
            continue
        txid = str(e["txid"]).lower()
        g = grouped.setdefault(txid, {"time": _entry_time(e), "outputs": {}, "comment": str(e.get("comment", "")),
                                      "vouts": set()})
        vout = e.get("vout")
        if vout in g["vouts"]:
            continue  # the same output listed twice (overlapping pages)
        g["vouts"].add(vout)
        address = str(e.get("address", ""))
        g["outputs"][address] = g["outputs"].get(address, 0) - to_satoshis(e["amount"])
    return [WalletSend(txid, g["time"], sum(g["outputs"].values()), next(iter(g["outputs"]), None),
                       dict(g["outputs"]), g["comment"]) for txid, g in grouped.items()]


@dataclass(frozen=True, slots=True)
class Match:
    """The batch's transaction (``txid``) if found; ``blockers``: sends that might be the batch's but do
    not match it (they make "not sent" unprovable)."""

    txid: str | None
    blockers: tuple[str, ...]


def match_batch(outputs: Mapping[str, int], marker: str, sends: Sequence[WalletSend],
                exclude_txids: set[str]) -> Match:
    """Find the wallet send that paid exactly ``outputs`` (see the module docstring for each wallet)."""
    total = sum(outputs.values())
    found: list[str] = []
    blockers: list[str] = []
    for s in sends:
        if s.txid.lower() in exclude_txids:
            continue
        if s.outputs is not None:  # Core: exact outputs, and our marker when the send has a comment
            if s.comment and s.comment != marker:
                continue  # another batch's or someone's send: provably not this batch
            if dict(s.outputs) == dict(outputs) and s.comment == marker:
                found.append(s.txid)
            elif s.comment == marker:
                blockers.append(f"{s.txid} carries this batch's marker but pays {dict(s.outputs)}")
            # a send without any comment is not the worker's (it always sends one)
        elif s.total == total and s.address in outputs:
            found.append(s.txid)
        else:
            blockers.append(f"{s.txid} (sent {s.total} incl. to {s.address}) could be this batch")
    if found:
        return Match(found[0], tuple(f"also matching: {t}" for t in found[1:]))
    return Match(None, tuple(blockers))
