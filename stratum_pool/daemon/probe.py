"""What ``stratum-pool check-config --probe`` asks of each daemon and wallet before the pool runs.

Every check is one :class:`Check` (a name, passed or not, one line of detail); a check that cannot be made
because an earlier one failed (no credentials worth trying on a daemon that does not answer) is skipped, not
failed, so the one real failure is the one line that says FAIL. Synchronous: the CLI runs it once and exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stratum_pool.coins import Coin
from stratum_pool.daemon.rpc import (
    DaemonEndpoint,
    DaemonError,
    RpcAuthError,
    RpcConnectionError,
    RpcError,
    blocking_call,
)

PASS, FAIL, SKIP = "ok", "FAIL", "skip"

# getblockchaininfo's "chain" per configured network: Core says main/test/regtest (testnet4 on newer Core),
# bcoin says main/testnet/regtest.
CHAIN_NAMES: dict[str, frozenset[str]] = {
    "mainnet": frozenset({"main"}),
    "testnet": frozenset({"test", "testnet", "testnet3", "testnet4"}),
    "regtest": frozenset({"regtest"}),
}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # PASS, FAIL or SKIP
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def line(self) -> str:
        return f"{self.status}: {self.name}" + (f": {self.detail}" if self.detail else "")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def probe_daemon(endpoint: DaemonEndpoint, coin: Coin, label: str, timeout: float = 10.0) -> list[Check]:
    """Reachable, credentials accepted, on the configured chain, getblocktemplate answers a template."""
    names = [f"{label}: reachable", f"{label}: credentials", f"{label}: chain is {coin.network}",
             f"{label}: getblocktemplate"]

    def rest(i: int, why: str) -> list[Check]:
        return [Check(n, SKIP, why) for n in names[i:]]

    try:
        info: Any = blocking_call(endpoint, "getblockchaininfo", [], timeout=timeout)
    except RpcAuthError as exc:
        return [Check(names[0], PASS), Check(names[1], FAIL, _one_line(exc)), *rest(2, "credentials refused")]
    except RpcConnectionError as exc:
        return [Check(names[0], FAIL, f"{endpoint.url}: {_one_line(exc)}"), *rest(1, "daemon unreachable")]
    except DaemonError as exc:
        return [Check(names[0], PASS), Check(names[1], PASS),
                Check(names[2], FAIL, f"getblockchaininfo: {_one_line(exc)}"), *rest(3, "chain unknown")]
    checks = [Check(names[0], PASS), Check(names[1], PASS)]
    chain = info.get("chain") if isinstance(info, dict) else None
    wanted = CHAIN_NAMES.get(coin.network, frozenset({coin.network}))
    if chain in wanted:
        checks.append(Check(names[2], PASS, f"chain={chain} height={info.get('blocks')}"))
    else:
        checks.append(Check(names[2], FAIL, f"the daemon is on chain {chain!r}, the config says {coin.network}"))
        return checks + rest(3, "wrong chain")
    try:
        template = blocking_call(endpoint, "getblocktemplate", [{"rules": list(coin.gbt_rules)}], timeout=timeout)
    except DaemonError as exc:
        checks.append(Check(names[3], FAIL, _one_line(exc)))
        return checks
    if isinstance(template, dict) and "previousblockhash" in template and "coinbasevalue" in template:
        checks.append(Check(names[3], PASS, f"height={template.get('height')} "
                                            f"transactions={len(template.get('transactions') or [])}"))
    else:
        checks.append(Check(names[3], FAIL, "the answer is not a block template"))
    return checks


def probe_wallet(endpoint: DaemonEndpoint, label: str, timeout: float = 10.0) -> list[Check]:
    """The payout wallet answers ``getwalletinfo`` with these credentials (Core, or bcoin's wallet port)."""
    name = f"{label}: wallet"
    try:
        info: Any = blocking_call(endpoint, "getwalletinfo", [], timeout=timeout)
    except RpcAuthError as exc:
        return [Check(name, FAIL, f"credentials refused: {_one_line(exc)}")]
    except RpcConnectionError as exc:
        return [Check(name, FAIL, f"{endpoint.url}: {_one_line(exc)}")]
    except RpcError as exc:  # e.g. Core without a loaded wallet (-18)
        return [Check(name, FAIL, _one_line(exc))]
    except DaemonError as exc:
        return [Check(name, FAIL, _one_line(exc))]
    if not isinstance(info, dict):
        return [Check(name, FAIL, "getwalletinfo did not answer an object")]
    wallet = info.get("walletname", info.get("walletid", ""))
    return [Check(name, PASS, f"wallet {wallet!r}" if wallet != "" else "")]
