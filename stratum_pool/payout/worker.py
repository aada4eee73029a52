"""One payout run: confirm blocks, reconcile unfinished batches, pay balances over the threshold - once.

Exactly-once, step by step:

1. A session advisory lock per coin (:data:`~stratum_pool.store.accounting.PAYOUT_LOCK_BASE` + coin id),
   held on a dedicated connection for the whole run: a second run at the same time reports
   "another payout run is in progress" and pays nothing.
2. (optional) :func:`~stratum_pool.rewards.confirmations.track_confirmations` with a node client.
3. Reconcile every batch still ``created`` (a run ended between recording it and learning the wallet's
   answer): the wallet's sends since the batch was recorded are searched (:mod:`.wallet`):
   found -> ``sent`` with that txid; provably not sent (no send that could be it, and the batch older than
   ``grace_seconds`` so no sendmany can still be in flight) -> ``failed`` and the amounts go back to the
   balances; otherwise -> ``unknown`` (its accounts are not paid until an operator resolves it with
   :func:`resolve_batch`). A batch too young to decide stays ``created`` and nothing is paid this run.
4. Pay: accounts whose confirmed balance reaches the threshold, at most ``payout_batch_max`` per batch,
   each its whole balance. A batch is recorded (``created``, payouts, ``payout`` ledger rows, balances
   lowered) and committed BEFORE ``sendmany``; then marked ``sent`` with the txid. An answer refusing the
   payment (an RPC error such as -6 not enough funds, -5 bad address, dust) -> the wallet is checked once
   more and the batch is ``failed`` and reverted (or ``sent`` if the transaction is there after all). No
   answer (connection error, timeout) -> the batch stays ``created`` for the next run's reconciliation, and
   this run stops.

``dry_run`` changes nothing: it reports what reconciliation would decide and what would be paid.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from stratum_pool.config import CoinSettings
from stratum_pool.daemon.rpc import DaemonClient, DaemonError, RpcError
from stratum_pool.payout.wallet import (
    ListingIncomplete,
    PayoutWallet,
    RpcWallet,
    batch_marker,
    match_batch,
    to_rpc_amount,
)
from stratum_pool.rewards.confirmations import ChainView, ConfirmationReport, track_confirmations, utc_now
from stratum_pool.store import accounting

_log = logging.getLogger(__name__)

IN_PROGRESS = "another payout run is in progress"
#: How far before a batch's recording a wallet send may carry a timestamp (clock differences).
CLOCK_SLACK_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class PaidOutput:
    account_id: int
    address: str
    amount: int


@dataclass(slots=True)
class BatchResult:
    batch_id: int | None  # None in a dry run
    status: str  # sent | failed | unknown | created (outcome not known yet) | would-pay | would-<status>
    outputs: tuple[PaidOutput, ...]
    txid: str | None = None
    error: str = ""

    @property
    def total(self) -> int:
        return sum(o.amount for o in self.outputs)


@dataclass(slots=True)
class PayoutReport:
    coin: str
    dry_run: bool = False
    skipped: str = ""  # why nothing was done at all (e.g. IN_PROGRESS)
    confirmations: ConfirmationReport | None = None
    reconciled: list[BatchResult] = field(default_factory=list)
    batches: list[BatchResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def paid(self) -> list[tuple[PaidOutput, str]]:
        """(output, txid) of everything paid by this run (not reconciled batches)."""
        return [(o, b.txid) for b in self.batches if b.status == "sent" and b.txid for o in b.outputs]

    @property
    def paid_total(self) -> int:
        return sum(o.amount for o, _ in self.paid)

    @property
    def problems(self) -> list[BatchResult]:
        """Batches an operator should look at (failed, unknown, or left open)."""
        return [b for b in self.reconciled + self.batches if b.status in ("failed", "unknown", "created")]

    def lines(self) -> list[str]:
        head = f"payout {self.coin}{' (dry run)' if self.dry_run else ''}"
        if self.skipped:
            return [f"{head}: {self.skipped}"]
        out = [head]
        if self.confirmations is not None:
            out += self.confirmations.lines()
        for b in self.reconciled:
            out.append(f"reconciled batch {b.batch_id}: {b.status}{' ' + b.txid if b.txid else ''}"
                       f"{' (' + b.error + ')' if b.error else ''}")
        for b in self.batches:
            label = "would pay" if b.status == "would-pay" else f"batch {b.batch_id} {b.status}"
            out.append(f"{label}: {len(b.outputs)} outputs, total {b.total}{' txid ' + b.txid if b.txid else ''}"
                       f"{' (' + b.error + ')' if b.error else ''}")
            out += [f"  {o.address} {o.amount} (account {o.account_id})" for o in b.outputs]
        out += self.notes
        if not self.batches:
            out.append("nothing to pay")
        return out


def _outputs(batch: accounting.Batch) -> tuple[PaidOutput, ...]:
    return tuple(PaidOutput(p.account_id, p.address, p.amount) for p in batch.outputs)


async def run_payout(dsn: str, coin_settings: CoinSettings, wallet: DaemonClient | PayoutWallet, *,
                     dry_run: bool = False, clock: Callable[[], datetime] = utc_now,
                     log: Callable[[str], None] | None = None, chain: ChainView | None = None,
                     grace_seconds: float = 60.0) -> PayoutReport:
    """One payout run for ``coin_settings.coin`` (see the module docstring).

    ``wallet``: a :class:`DaemonClient` over the wallet RPC (:func:`~stratum_pool.payout.wallet.wallet_client`)
    or any :class:`PayoutWallet`. ``chain``: a node client; when given, pending blocks are confirmed first.
    ``log`` gets one line per step (default: this module's logger).
    """
    say = log or _log.info
    coin = coin_settings.coin
    report = PayoutReport(coin.key, dry_run=dry_run)
    payer: PayoutWallet = RpcWallet(wallet) if isinstance(wallet, DaemonClient) else wallet
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as lock_conn:
        coin_id = await (accounting.get_coin_id(lock_conn, coin) if dry_run
                         else accounting.ensure_coin_id(lock_conn, coin))
        if coin_id is None:
            report.notes.append(f"no {coin.key} data in the database")
            return report
        if not await accounting.try_payout_lock(lock_conn, coin_id):
            report.skipped = IN_PROGRESS
            say(f"payout {coin.key}: {IN_PROGRESS}; nothing done")
            return report
        try:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                if chain is not None and not dry_run:
                    report.confirmations = await track_confirmations(dsn, chain, coin, clock=clock)
                    for line in report.confirmations.lines():
                        say(line)
                if await _reconcile(conn, coin_id, coin.key, payer, report, dry_run, clock, grace_seconds, say):
                    await _pay(conn, coin_id, coin_settings, payer, report, dry_run, clock, say)
        finally:
            await accounting.release_payout_lock(lock_conn, coin_id)
    return report


async def _reconcile(conn: accounting.AsyncConn, coin_id: int, coin_key: str, payer: PayoutWallet,
                     report: PayoutReport, dry_run: bool, clock: Callable[[], datetime], grace: float,
                     say: Callable[[str], None]) -> bool:
    """Settle every ``created`` batch; True when paying may go on (no batch is left open)."""
    open_left = False
    for batch in await accounting.batches(conn, coin_id, ["created"]):
        status, txid, error = await _decide(conn, coin_id, coin_key, batch, payer, clock, grace, after_refusal=False)
        result = BatchResult(batch.id, status, _outputs(batch), txid, error)
        if dry_run:
            result.status = f"would-{status}"
        else:
            now = clock()
            if status == "sent" and txid is not None:
                await accounting.mark_batch_sent(conn, batch.id, txid, now, "found by reconciliation")
            elif status == "failed":
                await accounting.fail_batch(conn, batch.id, error, now)
            elif status == "unknown":
                await accounting.mark_batch_unknown(conn, batch.id, error, now)
        if status == "created":
            open_left = True
        report.reconciled.append(result)
        say(f"reconcile batch {batch.id}: {result.status}{' ' + txid if txid else ''}{' - ' + error if error else ''}")
    if open_left:
        report.notes.append("a batch is still open (outcome not known yet): nothing paid this run")
    return not open_left


async def _decide(conn: accounting.AsyncConn, coin_id: int, coin_key: str, batch: accounting.Batch,
                  payer: PayoutWallet, clock: Callable[[], datetime], grace: float,
                  *, after_refusal: bool) -> tuple[str, str | None, str]:
    """(status, txid, error) for a batch whose sendmany outcome is not recorded.

    ``after_refusal``: the wallet has just answered sendmany with an error, so nothing is in flight and a
    send that is not a match cannot be this batch's (it would be in the wallet already with these outputs).
    """
    created = batch.created_at.timestamp()
    marker = batch_marker(coin_key, batch.id, created)
    try:
        sends = await payer.sends_since(created - CLOCK_SLACK_SECONDS)
    except (DaemonError, ListingIncomplete) as exc:
        if after_refusal:
            return "created", None, f"wallet history unreadable after a refusal: {exc}"
        age = clock().timestamp() - created
        return ("unknown" if age >= grace else "created"), None, f"wallet history unreadable: {exc}"
    exclude = await accounting.known_txids(conn, coin_id)
    match = match_batch(batch.by_address, marker, sends, exclude)
    if match.txid is not None:
        return "sent", match.txid, "; ".join(match.blockers)
    if after_refusal:
        return "failed", None, ""
    if match.blockers:
        return "unknown", None, "cannot tell whether the wallet paid it: " + "; ".join(match.blockers)
    if clock().timestamp() - created < grace:
        return "created", None, f"not found in the wallet yet; younger than {grace:g}s"
    return "failed", None, "not sent (no wallet transaction pays it)"


async def _pay(conn: accounting.AsyncConn, coin_id: int, settings: CoinSettings, payer: PayoutWallet,
               report: PayoutReport, dry_run: bool, clock: Callable[[], datetime],
               say: Callable[[str], None]) -> None:
    payables = await accounting.payable_accounts(conn, coin_id, settings.payout_threshold)
    sendable = []
    for p in payables:
        try:
            to_rpc_amount(p.amount)
        except ValueError as exc:
            report.notes.append(f"account {p.account_id} not paid: {exc}")
            continue
        sendable.append(p)
    size = settings.payout_batch_max
    for start in range(0, len(sendable), size):
        chunk = sendable[start:start + size]
        outputs = tuple(PaidOutput(p.account_id, p.address, p.amount) for p in chunk)
        if dry_run:
            report.batches.append(BatchResult(None, "would-pay", outputs))
            continue
        try:
            batch = await accounting.create_batch(conn, coin_id, chunk, clock())
        except accounting.BalanceChanged as exc:
            report.notes.append(f"balances moved while paying ({exc}); the rest waits for the next run")
            return
        say(f"batch {batch.id}: recorded {len(chunk)} outputs, total {batch.total}; sending")
        result = BatchResult(batch.id, "created", outputs)
        report.batches.append(result)
        marker = batch_marker(settings.coin.key, batch.id, batch.created_at.timestamp())
        try:
            txid = await payer.send_many(batch.by_address, marker)
        except RpcError as exc:
            status, txid2, note = await _decide(conn, coin_id, settings.coin.key, batch, payer, clock, 0.0,
                                                after_refusal=True)
            result.error = f"wallet refused: {exc.code} {exc.message}" + (f"; {note}" if note else "")
            if status == "sent" and txid2 is not None:
                await accounting.mark_batch_sent(conn, batch.id, txid2, clock(), result.error)
                result.status, result.txid = "sent", txid2
            elif status == "failed":
                await accounting.fail_batch(conn, batch.id, result.error, clock())
                result.status = "failed"
            say(f"batch {batch.id}: {result.status}: {result.error}")
            return
        except (DaemonError, OSError) as exc:
            result.error = f"no answer from the wallet, outcome unknown (next run reconciles): {exc}"
            say(f"batch {batch.id}: {result.error}")
            return
        await accounting.mark_batch_sent(conn, batch.id, txid, clock())
        result.status, result.txid = "sent", txid
        say(f"batch {batch.id}: sent {txid}")


async def resolve_batch(dsn: str, batch_id: int, *, txid: str | None = None, failed: bool = False,
                        clock: Callable[[], datetime] = utc_now) -> bool:
    """Operator's decision on an ``unknown`` (or stuck ``created``) batch: paid by ``txid``, or ``failed``
    (amounts back to the balances). True when the batch changed."""
    if (txid is None) == (not failed):
        raise ValueError("give exactly one of txid= or failed=True")
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        if txid is not None:
            return await accounting.mark_batch_sent(conn, batch_id, txid, clock(), "resolved by an operator")
        return await accounting.fail_batch(conn, batch_id, "resolved as failed by an operator", clock())
