"""pytest fixtures that run real bcash (Bitcoin Cash) regtest nodes (``stratum_pool.devnet.bcash``).

* ``bcash_installed`` (session): bcash is in node_modules (installs and patches it if needed).
* ``bcash_node`` (module): one on-disk node with wallet, fresh chain at height 0 when the module starts.
* ``bcash_factory`` (function): ``bcash_factory(name, **BcashNode kwargs)`` starts a node under the test's
  tmp_path; every node it made is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bcoin_fixtures import nodes_under

from stratum_pool.devnet.bcash import BcashNode, install

__all__ = ["bcash_factory", "bcash_installed", "bcash_node"]


@pytest.fixture(scope="session")
def bcash_installed() -> bool:
    """True once bcash is installed (no-op when ``make bcash`` already did it)."""
    install()
    return True


@pytest.fixture(scope="module")
def bcash_node(bcash_installed: bool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BcashNode]:
    node = BcashNode(tmp_path_factory.mktemp("bcash"))
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def bcash_factory(bcash_installed: bool, tmp_path: Path) -> Iterator[Callable[..., BcashNode]]:
    with nodes_under(BcashNode, tmp_path) as make:
        yield make
