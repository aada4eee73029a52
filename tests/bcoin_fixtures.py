"""pytest fixtures that run real bcoin regtest nodes (``stratum_pool.devnet.bcoin``).

* ``bcoin_installed`` (session): bcoin is in node_modules (installs it if needed).
* ``bcoin_node`` (module): one on-disk node with wallet, fresh chain at height 0 when the module starts.
* ``bcoin_segwit_node`` (module): a node with segwit active (height 432) and a wallet holding mature coins.
* ``bcoin_factory`` (function): ``bcoin_factory(name, **BcoinNode kwargs)`` starts a node under the
  test's tmp_path; every node it made is stopped at teardown.

Each node listens on free 127.0.0.1 ports; use ``node.url``, ``node.rpc_user``, ``node.rpc_password``
(or ``node.daemon_config()``) to point the pool at it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from stratum_pool.devnet.bcoin import BcoinNode, install

__all__ = ["bcoin_factory", "bcoin_installed", "bcoin_node", "bcoin_segwit_node", "nodes_under"]

N = TypeVar("N", bound=BcoinNode)  # bcoin, or a node built on it (bcash)


@pytest.fixture(scope="session")
def bcoin_installed() -> bool:
    """True once bcoin is installed (no-op when ``make bcoin`` already did it)."""
    install()
    return True


@pytest.fixture(scope="module")
def bcoin_node(bcoin_installed: bool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BcoinNode]:
    node = BcoinNode(tmp_path_factory.mktemp("bcoin"))
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def bcoin_segwit_node(bcoin_installed: bool,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[BcoinNode]:
    node = BcoinNode(tmp_path_factory.mktemp("bcoin-segwit"))
    node.start()
    try:
        node.activate_segwit()
        node.wait_for_wallet()
        yield node
    finally:
        node.stop()


@contextlib.contextmanager
def nodes_under(node_class: Callable[..., N], directory: Path) -> Iterator[Callable[..., N]]:
    """``make(name, start=True, **kwargs)`` builds ``node_class(directory / name, **kwargs)`` (started unless
    told not to); every node made is stopped on leaving, the newest first."""
    made: list[N] = []

    def make(name: str = "node", start: bool = True, **kwargs: Any) -> N:
        node = node_class(directory / name, **kwargs)
        made.append(node)
        if start:
            node.start()
        return node

    try:
        yield make
    finally:
        for node in reversed(made):
            node.stop()


@pytest.fixture
def bcoin_factory(bcoin_installed: bool, tmp_path: Path) -> Iterator[Callable[..., BcoinNode]]:
    with nodes_under(BcoinNode, tmp_path) as make:
        yield make


def regtest_coin_toml(node: Any, port: int, extra: str = "") -> str:
    """A pool config's ``[[coins]]`` entry for bitcoin regtest on ``port``, mining on ``node`` (its RPC);
    ``extra`` (settings of the coin, then its tables such as ``[coins.vardiff]``) goes before the daemon."""
    return f"""[[coins]]
coin = "bitcoin"
network = "regtest"
stratum_host = "127.0.0.1"
stratum_port = {port}
{extra}
[[coins.daemons]]
url = "{node.url}"
user = "{node.rpc_user}"
password = "{node.rpc_password}"
"""
