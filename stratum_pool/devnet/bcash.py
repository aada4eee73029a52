"""bcash (npm ``bcash`` 1.1.1, the bcoin team's Bitcoin Cash full node) as a real Bitcoin Cash regtest daemon
for ``make run --coin=bitcoincash`` and the tests.

``install()`` puts bcash into ``stratum_pool/devnet/bcash/node_modules`` (``python -m stratum_pool.devnet.bcash
install``), builds its native add-ons and applies :data:`PATCHES`; ``BcashNode`` runs ``bcash/launcher.js``
(a FullNode with the wallet plugin and the in-process fixes its header lists) and talks JSON-RPC to it, the
same way as a bcoin node (``devnet/bcoin.py``: node RPC and wallet RPC on two ports, the API key as password).

Regtest facts (bcash 1.1.1, consensus rules of Nov 2018): every transaction, the coinbase included, at least
100 bytes (``bad-txns-undersize``); non-coinbase transactions in canonical (ascending txid) order; no segwit;
getblocktemplate takes no rules and gives no witness commitment; submitblock answers null on success (and for
a block that lands on a side chain: compare getbestblockhash), ``rejected: <reason>`` otherwise; the reward
halves every 150 blocks; addresses print as ``bchreg:`` cashaddr.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from stratum_pool.chain.address import address_to_script, script_to_address
from stratum_pool.coins import get_coin
from stratum_pool.devnet.bcoin import BcoinError, BcoinNode, NpmNode, node_cli

__all__ = ["BCASH_VERSION", "PACKAGE_DIR", "PATCHES", "BcashInstallError", "BcashNode", "install", "is_installed",
           "main"]

BCASH_VERSION = "1.1.1"
PACKAGE_DIR = Path(__file__).resolve().with_name("bcash")
LAUNCHER = PACKAGE_DIR / "launcher.js"
NODE_MODULES = PACKAGE_DIR / "node_modules"
# Native add-ons npm must build itself (npm 11 runs no install scripts by itself): bdb is the on-disk
# database; mrmr and bsip speed up parsing and hashing (the rest have JavaScript fallbacks).
_REBUILD = ("bdb", "mrmr", "bsip")

# Fixes applied to bcash's own files at install (file, text, replacement), each checked to apply once:
PATCHES: tuple[tuple[str, str, str], ...] = (
    # getblocktemplate's "depends" asserts that each parent comes before its child, which canonical (txid)
    # order breaks whenever a child's txid sorts before its parent's: list only the earlier parents, as
    # Bitcoin ABC and BCHN do (a later parent is in the same block anyway).
    ("bcash/lib/node/rpc.js",
     "        if (deps.indexOf(dep) === -1) {\n          assert(dep < i + 1);\n          deps.push(dep);",
     "        if (dep < i + 1 && deps.indexOf(dep) === -1) {\n          deps.push(dep);"),
)


class BcashInstallError(BcoinError):
    """node/npm are missing, ``npm install`` failed, or a patch no longer applies."""


def _apply_patches() -> None:
    for rel, old, new in PATCHES:
        path = NODE_MODULES / rel
        text = path.read_text()
        if new in text and old not in text:
            continue  # applied by an earlier install
        if text.count(old) != 1:
            raise BcashInstallError(f"patch for {path} does not apply: the text to replace is not there once")
        path.write_text(text.replace(old, new))


_NPM = NpmNode("bcash", PACKAGE_DIR, _REBUILD, "require('bcash/lib/node/fullnode')", BcashInstallError,
               stamp_extra=repr(PATCHES).encode(), after_install=_apply_patches)


def is_installed() -> bool:
    """True when node_modules holds bcash installed (and patched) from the current package.json with this node."""
    return _NPM.is_installed()


def install(force: bool = False, timeout: float = 900.0) -> bool:
    """Install bcash into ``PACKAGE_DIR/node_modules`` unless it is there already (npm install, the native
    add-ons, the patches). Safe to call from several processes at once (a file lock). True when npm ran."""
    return _NPM.install(force, timeout)


class BcashNode(BcoinNode):
    """One bcash regtest node (with wallet) on 127.0.0.1; see :class:`BcoinNode` for the arguments.

    Started with ``--template-refresh-on-tx`` (a new mempool transaction is in the next template at once).
    Its addresses are ``bchreg:`` cashaddr; the base58 regtest prefixes are Core's (m/n, 2).
    """

    launcher = LAUNCHER
    package_dir = PACKAGE_DIR
    env = {"BCASH_NETWORK": "regtest"}
    kind = "bcash"

    def ensure_installed(self) -> None:
        if not is_installed():
            install()

    def argv(self) -> list[str]:
        return [*super().argv(), "--template-refresh-on-tx"]

    def new_address(self, kind: str = "cashaddr") -> str:
        """A fresh ``bchreg:`` address of the ``primary`` wallet's default account (``legacy``: its base58 form)."""
        address = str(self.wallet_rpc("getnewaddress"))
        if kind == "cashaddr":
            return address
        if kind == "legacy":
            # the same key's P2PKH script written in base58 (what a coin without cashaddr prints)
            coin = get_coin("bitcoincash", "regtest")
            base58 = dataclasses.replace(coin, cashaddr_prefix="")
            return script_to_address(address_to_script(address, coin), base58)
        raise ValueError(f"address kind must be 'cashaddr' or 'legacy', not {kind!r}")

    @property
    def mining_address(self) -> str:
        if self._mining_address is None:
            self._mining_address = self.new_address()
        return self._mining_address

    def activate_segwit(self, address: str | None = None) -> int:
        raise BcoinError("Bitcoin Cash has no segwit")


def main(argv: Sequence[str] | None = None) -> int:
    return node_cli("bcash", BCASH_VERSION, NODE_MODULES, install, BcashInstallError, BcashNode, argv)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
