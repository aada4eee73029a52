"""``stratum-pool check-config --probe`` against the real regtest stack (a bcoin node with its wallet, the
machine's PostgreSQL), run as the operator runs it: every check passes; with the daemon stopped, the wrong
credentials, the wrong network, the database down or not migrated, the failing check is named in one line,
the exit code is 1 and nothing is a traceback. ``migrate`` with the database down answers one line too."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from stratum_pool.devnet.bcoin import BcoinNode
from stratum_pool.devnet.common import free_port

pytestmark = pytest.mark.integration


def write_config(path: Path, node: BcoinNode, dsn: str, *, network: str = "regtest", mode: str = "pplns",
                 password: str | None = None, wallet: bool = True) -> Path:
    daemon = dict(node.daemon_config())
    if password is not None:
        daemon["password"] = password
    lines = ["[pool]", "node_id = 0", "", "[database]", f"dsn = {json.dumps(dsn)}",
             f"spool_dir = {json.dumps(str(path.parent / 'spool'))}", "", "[[coins]]", 'coin = "bitcoin"',
             f"network = {json.dumps(network)}", f"mode = {json.dumps(mode)}", 'stratum_host = "127.0.0.1"',
             "stratum_port = 0"]
    if mode != "solo":
        lines.append(f"pool_address = {json.dumps(node.mining_address)}")
    lines += ["", "[[coins.daemons]]", *(f"{k} = {json.dumps(v)}" for k, v in daemon.items())]
    if wallet:
        lines += ["", "[coins.wallet]", f"name = {json.dumps('bcoin-wallet')}", f"url = {json.dumps(node.wallet_url)}",
                  f"user = {json.dumps(node.rpc_user)}", f"password = {json.dumps(password or node.rpc_password)}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stratum_pool.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def probe(config: Path) -> tuple[int, list[str], str]:
    result = cli("check-config", "--probe", "--config", config)
    return result.returncode, result.stdout.splitlines(), result.stderr


def failures(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL:")]


def dead_dsn() -> str:
    """A DSN to a port nothing listens on: the database is down."""
    return f"postgresql://postgres@127.0.0.1:{free_port()}/postgres?connect_timeout=3"


def test_every_check_passes_on_the_regtest_stack(bcoin_node: BcoinNode, pg_dsn: str, tmp_path: Path) -> None:
    code, lines, err = probe(write_config(tmp_path / "pool.toml", bcoin_node, pg_dsn))
    assert code == 0, "\n".join(lines) + err
    # the first line is check-config's own (the coin read from the file), the last the count
    assert lines[0].startswith("ok: bitcoin-regtest (sha256d) mode=pplns")
    checks = lines[1:-1]
    names = [line.split(": ", 1)[1] for line in checks]
    daemon = f"bitcoin-regtest: daemon {bcoin_node.daemon_config()['name']}"
    for expected in (f"{daemon}: reachable", f"{daemon}: credentials", f"{daemon}: chain is regtest",
                     f"{daemon}: getblocktemplate", "bitcoin-regtest: payout: wallet", "database: reachable",
                     "database: schema current"):
        assert any(n.startswith(expected) for n in names), (expected, lines)
    assert all(line.startswith("ok:") for line in checks), lines
    assert lines[-1] == f"{len(checks)} checks: {len(checks)} ok, 0 failed"
    assert err == ""


def test_a_stopped_daemon_is_named_in_one_line(bcoin_factory: Callable[..., BcoinNode], pg_dsn: str,
                                                tmp_path: Path) -> None:
    node = bcoin_factory("stopped")
    config = write_config(tmp_path / "pool.toml", node, pg_dsn)
    node.stop()
    code, lines, err = probe(config)
    assert code == 1
    daemon_fail, wallet_fail = failures(lines)
    daemon = f"bitcoin-regtest: daemon {node.daemon_config()['name']}"
    assert daemon_fail.startswith(f"FAIL: {daemon}: reachable: {node.url}"), lines
    # bcoin's wallet is served by the same process
    assert wallet_fail.startswith(f"FAIL: bitcoin-regtest: payout: wallet: {node.wallet_url}"), lines
    assert "Traceback" not in err and err == ""


def test_the_stopped_daemon_alone_fails(bcoin_factory: Callable[..., BcoinNode], pg_dsn: str,
                                        tmp_path: Path) -> None:
    """Solo mode has no wallet to probe: a stopped daemon is exactly one FAIL line, its dependents skipped."""
    node = bcoin_factory("stopped-solo")
    config = write_config(tmp_path / "pool.toml", node, pg_dsn, mode="solo", wallet=False)
    node.stop()
    code, lines, err = probe(config)
    assert code == 1
    assert len(failures(lines)) == 1, lines
    assert failures(lines)[0].startswith("FAIL: bitcoin-regtest: daemon ")
    assert ": reachable: " in failures(lines)[0]
    assert sum(line.startswith("skip:") for line in lines) == 3
    assert "ok: database: schema current" in "\n".join(lines)
    assert err == ""


def test_the_database_down_is_named_in_one_line(bcoin_node: BcoinNode, tmp_path: Path) -> None:
    code, lines, err = probe(write_config(tmp_path / "pool.toml", bcoin_node, dead_dsn()))
    assert code == 1
    (fail,) = failures(lines)
    assert fail.startswith("FAIL: database: reachable: ")
    assert "skip: database: schema current: database unreachable" in lines
    assert err == ""


def test_an_unmigrated_database_is_named(bcoin_node: BcoinNode, pg_empty_dsn: str, tmp_path: Path) -> None:
    code, lines, _ = probe(write_config(tmp_path / "pool.toml", bcoin_node, pg_empty_dsn))
    assert code == 1
    (fail,) = failures(lines)
    assert fail.startswith("FAIL: database: schema current: version 0, this release needs ")
    assert fail.endswith("run stratum-pool migrate")


def test_wrong_credentials_are_named(bcoin_node: BcoinNode, pg_dsn: str, tmp_path: Path) -> None:
    code, lines, err = probe(write_config(tmp_path / "pool.toml", bcoin_node, pg_dsn, password="wrong"))
    assert code == 1
    fails = failures(lines)
    assert len(fails) == 2, lines
    assert ": credentials: " in fails[0] and fails[0].startswith("FAIL: bitcoin-regtest: daemon ")
    assert fails[1].startswith("FAIL: bitcoin-regtest: payout: wallet: credentials refused")
    assert err == ""


def test_the_wrong_network_is_named(bcoin_node: BcoinNode, pg_dsn: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "pool.toml", bcoin_node, pg_dsn, network="testnet", mode="solo",
                          wallet=False)
    code, lines, _ = probe(config)
    assert code == 1
    (fail,) = failures(lines)
    assert fail.startswith("FAIL: bitcoin-testnet: daemon ")
    assert fail.endswith("chain is testnet: the daemon is on chain 'regtest', the config says testnet")


def test_migrate_with_the_database_down_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "pool.toml"
    config.write_text(f'[database]\ndsn = "{dead_dsn()}"\n\n[[coins]]\ncoin = "bitcoin"\nnetwork = "regtest"\n'
                      'mode = "solo"\n\n[[coins.daemons]]\nurl = "http://127.0.0.1:1"\npassword = "x"\n')
    result = cli("migrate", "--config", config)
    assert result.returncode == 1
    assert result.stderr.startswith("database: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(("args", "first_words"), [
    (("check-config", "--config", "/nonexistent/pool.toml"), "config error: cannot read config file"),
    (("notify", "--to", "nonsense", "00"), "--to: 'nonsense' is not HOST:PORT"),
])
def test_expected_failures_are_one_line(args: tuple[str, ...], first_words: str) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(first_words)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_serve_with_its_port_taken_is_one_line(bcoin_node: BcoinNode, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path / "pool.toml", bcoin_node, "", mode="solo", wallet=False)
        text = config.read_text().replace('dsn = ""', "").replace("stratum_port = 0", f"stratum_port = {port}")
        config.write_text(text.replace("[pool]", "[api]\nenabled = false\n\n[pool]", 1))
        result = subprocess.run([sys.executable, "-m", "stratum_pool.cli", "serve", "--config", str(config)],
                                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("serve: [Errno 98]"), result.stderr
    assert "Traceback" not in result.stderr
