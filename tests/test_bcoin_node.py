"""bcoin 1.0.2 as the Bitcoin regtest daemon: install, RPC, Core addresses, mining, wallet, restart,
longpoll (stratum_pool.devnet.bcoin)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bitcoinrpc.authproxy import JSONRPCException

from stratum_pool.coins import get_coin
from stratum_pool.devnet import bcoin as bcoin_mod
from stratum_pool.devnet.bcoin import BcoinNode, install, is_installed, start_pair
from stratum_pool.devnet.common import wait_until

pytestmark = pytest.mark.integration

REGTEST = get_coin("bitcoin", "regtest")
# hash160 of the compressed secp256k1 generator point (private key 1).
HASH160 = bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def coinbase_of(node: BcoinNode, block_hash: str) -> dict[str, Any]:
    block = node.rpc("getblock", block_hash, True, True)  # bcoin: (hash, verbose, details)
    tx: dict[str, Any] = block["tx"][0]
    assert "coinbase" in tx["vin"][0]
    return tx


# ---- install ----


def test_install_is_idempotent(bcoin_installed: bool) -> None:
    assert is_installed()
    started = time.monotonic()
    assert install() is False  # nothing to do: stamp matches package.json and node
    assert time.monotonic() - started < 10
    done = subprocess.run([sys.executable, "-m", "stratum_pool.devnet.bcoin", "install"],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert "already installed" in done.stdout
    assert (bcoin_mod.NODE_MODULES / "bcoin" / "package.json").is_file()


# ---- one node ----


def test_node_answers_regtest(bcoin_node: BcoinNode) -> None:
    info = bcoin_node.rpc("getblockchaininfo")
    assert info["chain"] == "regtest"
    assert bcoin_node.url == f"http://127.0.0.1:{bcoin_node.http_port}"
    assert bcoin_node.rpc_password == bcoin_node.api_key
    assert bcoin_node.daemon_config()["url"] == bcoin_node.url
    # The wallet RPC lives on its own port; the node port does not serve wallet methods.
    with pytest.raises(JSONRPCException):
        bcoin_node.rpc("getnewaddress", "")


def test_wrong_api_key_is_refused(bcoin_node: BcoinNode) -> None:
    other = BcoinNode(bcoin_node.datadir, http_port=bcoin_node.http_port, api_key="wrong")
    with pytest.raises(Exception):  # noqa: B017 - authproxy raises its own error on HTTP 401
        other.rpc("getblockcount")


def test_core_format_addresses(bcoin_node: BcoinNode) -> None:
    p2pkh = base58check(bytes([REGTEST.p2pkh_prefix]) + HASH160)
    assert p2pkh == "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r"
    got = bcoin_node.rpc("validateaddress", p2pkh)
    assert got["isvalid"] is True
    assert got["scriptPubKey"] == "76a914" + HASH160.hex() + "88ac"

    p2sh = base58check(bytes([REGTEST.p2sh_prefix]) + HASH160)
    assert p2sh.startswith("2")
    got = bcoin_node.rpc("validateaddress", p2sh)
    assert got["isvalid"] is True
    assert got["scriptPubKey"] == "a914" + HASH160.hex() + "87"

    # BIP173's P2WPKH test vector with Core's regtest hrp.
    got = bcoin_node.rpc("validateaddress", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080")
    assert got["isvalid"] is True
    assert got["scriptPubKey"] == "0014" + HASH160.hex()

    # bcoin's own regtest P2PKH prefix (0x3c) is no longer a regtest address.
    assert bcoin_node.rpc("validateaddress", base58check(b"\x3c" + HASH160))["isvalid"] is False


def test_wallet_addresses(bcoin_node: BcoinNode) -> None:
    bech32 = bcoin_node.new_address()
    assert bech32.startswith(REGTEST.bech32_hrp + "1q")
    legacy = bcoin_node.new_address("legacy")
    assert legacy[0] in "mn"
    for address in (bech32, legacy):
        got = bcoin_node.rpc("validateaddress", address)
        assert got["isvalid"] is True
    assert bcoin_node.new_address() != bech32


def test_generatetoaddress_pays_the_address(bcoin_node: BcoinNode) -> None:
    address = bcoin_node.new_address()
    script = bcoin_node.rpc("validateaddress", address)["scriptPubKey"]
    before = bcoin_node.height()
    hashes = bcoin_node.generate(2, address)
    assert len(hashes) == 2
    assert bcoin_node.height() == before + 2
    assert bcoin_node.rpc("getbestblockhash") == hashes[-1]
    assert bcoin_node.rpc("getblockhash", before + 2) == hashes[-1]
    coinbase = coinbase_of(bcoin_node, hashes[-1])
    paid = [o for o in coinbase["vout"] if o["scriptPubKey"]["hex"] == script]
    assert len(paid) == 1
    assert paid[0]["value"] == Decimal(50)


def test_getblocktemplate(bcoin_node: BcoinNode) -> None:
    tip = bcoin_node.rpc("getbestblockhash")
    gbt = bcoin_node.rpc("getblocktemplate", {"rules": list(REGTEST.gbt_rules)})
    assert gbt["previousblockhash"] == tip
    assert gbt["height"] == bcoin_node.height() + 1
    assert gbt["bits"] == "207fffff"
    assert gbt["coinbasevalue"] > 0
    assert len(gbt["longpollid"]) == 72
    assert gbt["longpollid"].startswith(tip)
    for key in ("version", "curtime", "mintime", "target", "transactions", "default_witness_commitment"):
        assert key in gbt


def test_submitblock_answers(bcoin_node: BcoinNode, bcoin_factory: Callable[..., BcoinNode]) -> None:
    tip = bcoin_node.rpc("getbestblockhash")
    # A header of zeros fails proof of work: bcoin answers with a reason string, not an RPC error.
    assert bcoin_node.rpc("submitblock", (bytes(80) + b"\x00").hex()) == "rejected: high-hash"
    assert bcoin_node.rpc("getbestblockhash") == tip
    # A block mined on another (unpeered) node: null on success, then "duplicate".
    other = bcoin_factory("other", memory=True)
    block_hash = other.generate(1)[0]
    raw = other.rpc("getblock", block_hash, False)
    fresh = bcoin_factory("fresh", memory=True)
    assert fresh.rpc("submitblock", raw) is None
    assert fresh.rpc("getbestblockhash") == block_hash
    assert fresh.rpc("getblockhash", 1) == block_hash
    assert fresh.rpc("submitblock", raw) == "rejected: duplicate"


def test_wallet_spends_on_disk(bcoin_node: BcoinNode) -> None:
    """Mature coinbases, sendmany to two addresses, exact getreceivedbyaddress: needs the launcher's
    leveldown range-option fix (without it the on-disk wallet finds no coins)."""
    assert not bcoin_node.memory
    bcoin_node.generate(101)  # to the wallet's legacy mining address
    bcoin_node.wait_for_wallet()
    assert Decimal(bcoin_node.wallet_rpc("getbalance")) >= 50
    assert bcoin_node.wallet_rpc("listunspent")
    assert bcoin_node.rpc("getchaintips")

    a, b = bcoin_node.new_address("legacy"), bcoin_node.new_address()
    txid = bcoin_node.wallet_rpc("sendmany", "", {a: Decimal("1.25"), b: Decimal("0.5")})
    assert isinstance(txid, str) and len(txid) == 64
    # The wallet hands the transaction to the node's mempool just after sendmany answers.
    wait_until(lambda: True if txid in bcoin_node.rpc("getrawmempool") else None, 10, "tx in mempool")
    block_hash = bcoin_node.generate(1)[0]
    assert txid in bcoin_node.rpc("getblock", block_hash)["tx"]
    bcoin_node.wait_for_wallet()
    assert bcoin_node.wallet_rpc("getreceivedbyaddress", a) == Decimal("1.25")
    assert bcoin_node.wallet_rpc("getreceivedbyaddress", b) == Decimal("0.5")


def test_longpoll_returns_on_new_block(bcoin_node: BcoinNode) -> None:
    rules = {"rules": list(REGTEST.gbt_rules)}
    first = bcoin_node.rpc("getblocktemplate", rules)
    result: dict[str, Any] = {}

    def poll() -> None:
        try:
            result["gbt"] = bcoin_node.rpc("getblocktemplate", {**rules, "longpollid": first["longpollid"]},
                                           timeout=60)
        except Exception as exc:  # reported by the assertions below
            result["error"] = exc
        result["at"] = time.monotonic()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), result  # blocked until the tip changes
    mined_at = time.monotonic()
    new_tip = bcoin_node.generate(1)[0]
    thread.join(10)
    assert not thread.is_alive()
    assert "error" not in result, result
    assert result["gbt"]["previousblockhash"] == new_tip
    assert result["at"] - mined_at < 5.0  # milliseconds when idle; generous under load


# ---- restart, memory mode, two nodes ----


def test_sigterm_exits_cleanly_and_restart_keeps_chain(bcoin_factory: Callable[..., BcoinNode]) -> None:
    node = bcoin_factory("restart")
    hashes = node.generate(5)
    node.wait_for_wallet()
    balance = Decimal(node.wallet_rpc("getbalance"))
    assert node.stop() == 0
    assert not node.running
    node.start()
    assert node.height() == 5
    assert node.rpc("getbestblockhash") == hashes[-1]
    node.wait_for_wallet()
    assert Decimal(node.wallet_rpc("getbalance")) == balance
    assert node.stop() == 0


def test_memory_mode_forgets(bcoin_factory: Callable[..., BcoinNode]) -> None:
    node = bcoin_factory("memory", memory=True)
    node.generate(3)
    assert node.height() == 3
    assert node.stop() == 0
    node.start()
    assert node.height() == 0
    assert not (node.chain_dir / "chain").exists()


def test_pair_propagates_blocks(bcoin_installed: bool, tmp_path: Path) -> None:
    a, b = start_pair(tmp_path, memory=True)
    try:
        assert a.rpc("getconnectioncount") >= 1
        tip = a.generate(3)[-1]
        b.wait_for_height(3, timeout=20)
        assert b.rpc("getbestblockhash") == tip
    finally:
        b.stop()
        a.stop()


def test_segwit_activation(bcoin_factory: Callable[..., BcoinNode]) -> None:
    node = bcoin_factory("segwit", memory=True)
    assert node.segwit_status() == "defined"
    assert node.activate_segwit() == 432
    assert node.segwit_status() == "active"


def test_segwit_node_fixture(bcoin_segwit_node: BcoinNode) -> None:
    node = bcoin_segwit_node
    assert node.segwit_status() == "active"
    assert Decimal(node.wallet_rpc("getbalance")) > 0
    gbt = node.rpc("getblocktemplate", {"rules": ["segwit"]})
    assert "!segwit" in gbt["rules"]
    assert gbt["default_witness_commitment"].startswith("6a24aa21a9ed")
    with pytest.raises(JSONRPCException):
        node.rpc("getblocktemplate")  # segwit is active: a template request must list it
    # With segwit active the wallet can spend its bech32 coins too.
    bech32 = node.new_address()
    txid = node.wallet_rpc("sendmany", "", {bech32: Decimal("3")})
    wait_until(lambda: True if txid in node.rpc("getrawmempool") else None, 10, "tx in mempool")
    node.generate(1)
    node.wait_for_wallet()
    assert node.wallet_rpc("getreceivedbyaddress", bech32) == Decimal("3")


def test_start_fails_loudly_on_a_taken_port(bcoin_node: BcoinNode, tmp_path: Path) -> None:
    clash = BcoinNode(tmp_path / "clash", http_port=bcoin_node.http_port)
    with pytest.raises(bcoin_mod.BcoinError):
        clash.start(timeout=20)
    assert not clash.running
