"""The litecoind regtest launcher itself: a pair, cleanup on errors, restart, MWEB gating."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from daemon_fixtures import requires_litecoind

from stratum_pool.devnet.litecoind import LitecoinRegtest, litecoin_regtest, rpcauth_line


def test_rpcauth_line() -> None:
    line = rpcauth_line("alice", "secret")
    user, _, rest = line.partition(":")
    salt, _, digest = rest.partition("$")
    assert user == "alice" and len(salt) == 32
    assert digest == hmac.new(salt.encode(), b"secret", hashlib.sha256).hexdigest()


@pytest.mark.integration
@requires_litecoind
def test_pair_lifecycle_and_cleanup_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), litecoin_regtest(tmp_path / "net") as net:
        a, b = net.nodes
        assert a.running and b.running
        assert int(a.rpc("getconnectioncount")) >= 1
        assert int(a.rpc("getblockcount")) == 1  # first block mined: templates work
        assert net.mweb_status() == "defined"
        with pytest.raises(RuntimeError, match="mweb_activatable"):
            net.activate_mweb()
        hashes = net.generate(2, on="b")
        assert net.sync() == hashes[-1]
        tip = hashes[-1]
        net.restart_a(["-blocknotify=true %s"])
        assert a.running and a.rpc("getbestblockhash") == tip
        assert a.new_address("legacy")  # the wallet is loaded again
        raise RuntimeError("boom")
    assert not a.running and not b.running
    assert a.process is not None and a.process.proc is not None and a.process.proc.returncode == 0


@pytest.mark.integration
@requires_litecoind
def test_pair_without_first_block_is_in_initial_download() -> None:
    net = LitecoinRegtest.start_pair(mine_first_block=False)
    try:
        assert int(net.a.rpc("getblockcount")) == 0
        assert net.root.exists()
    finally:
        net.stop()
    assert not net.root.exists()  # its own temporary directory is removed
    assert not net.a.running and not net.b.running
