"""Paying confirmed balances from the pool's wallet, exactly once (see :mod:`.worker`)."""

from stratum_pool.payout.wallet import PayoutWallet, RpcWallet, wallet_client
from stratum_pool.payout.worker import PayoutReport, resolve_batch, run_payout

__all__ = ["PayoutReport", "PayoutWallet", "RpcWallet", "resolve_batch", "run_payout", "wallet_client"]
