"""bcash 1.1.1 as the Bitcoin Cash regtest daemon (stratum_pool.devnet.bcash): install with its patch, Core's
base58 prefixes next to bchreg: cashaddr, the template a pool meets, submitblock's answers (a refusal, a
side chain), and each fix of the launcher (longpoll, parent/child in canonical order, sends in the mempool,
gettransaction, listsinceblock, getnewaddress, coinbase categories, the wallet's folder)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from stratum_pool.chain import cashaddr
from stratum_pool.chain.address import address_to_script, base58check_encode
from stratum_pool.chain.pow import sha256d
from stratum_pool.coins import get_coin
from stratum_pool.daemon.gbt import ScannedTransactions
from stratum_pool.daemon.rpc import DaemonClient, DaemonEndpoint, blocking_call, normalize_submit_result
from stratum_pool.devnet import bcash as bcash_mod
from stratum_pool.devnet.bcash import BcashNode, install, is_installed
from stratum_pool.devnet.common import wait_until
from stratum_pool.jobs.builder import template_from_gbt

pytestmark = pytest.mark.integration

RBCH = get_coin("bitcoincash", "regtest")


def test_install_is_idempotent_and_patched(bcash_installed: bool) -> None:
    assert is_installed()
    assert install() is False  # already there: npm does not run again
    for rel, old, new in bcash_mod.PATCHES:
        text = (bcash_mod.NODE_MODULES / rel).read_text()
        assert new in text and old not in text


def test_addresses(bcash_node: BcashNode) -> None:
    address = bcash_node.new_address()
    assert address.startswith("bchreg:q")
    script = address_to_script(address, RBCH)
    legacy = bcash_node.new_address("legacy")
    assert legacy[0] in "mn"  # Core's regtest prefix, not bcash's own
    # the node reads Core's base58 and prints the same script's cashaddr
    info = bcash_node.rpc("validateaddress", base58check_encode(b"\x6f" + script[3:23]))
    assert info["isvalid"] and info["address"] == address and info["scriptPubKey"] == script.hex()
    p2sh = base58check_encode(b"\xc4" + bytes(20))
    assert bcash_node.rpc("validateaddress", p2sh)["address"] == cashaddr.encode("bchreg", 1, bytes(20))


def test_template_a_pool_meets(bcash_node: BcashNode) -> None:
    gbt = bcash_node.rpc("getblocktemplate", {})
    assert gbt["rules"] == []
    assert "default_witness_commitment" not in gbt
    assert gbt["sizelimit"] == 32_000_000
    assert gbt["previousblockhash"] == bcash_node.rpc("getbestblockhash")
    assert len(gbt["longpollid"]) == 72


def test_longpoll_returns_on_new_block(bcash_node: BcashNode) -> None:
    first = bcash_node.rpc("getblocktemplate", {})
    result: dict[str, Any] = {}

    def poll() -> None:
        try:
            result["gbt"] = bcash_node.rpc("getblocktemplate", {"longpollid": first["longpollid"]}, timeout=60)
        except Exception as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), result  # blocked until the tip changes (bcash 1.1.1: "Assertion failed.")
    new_tip = bcash_node.generate(1)[0]
    thread.join(20)
    assert not thread.is_alive() and "error" not in result, result
    assert result["gbt"]["previousblockhash"] == new_tip


def test_wallet_fixes(bcash_node: BcashNode) -> None:
    bcash_node.generate(101)
    bcash_node.wait_for_wallet()
    assert (bcash_node.chain_dir / "wallet").is_dir()  # next to the chain, not in ~/.bcash
    outside = cashaddr.encode("bchreg", 0, bytes(range(1, 21)))
    txid = bcash_node.wallet_rpc("sendmany", "", {outside: Decimal("2"), bcash_node.new_address(): Decimal("1.5")})
    assert txid in bcash_node.rpc("getrawmempool")  # at once: the send waited for the relay
    tx = bcash_node.wallet_rpc("gettransaction", txid)  # bcash 1.1.1: "Invalid integer value."
    assert tx["confirmations"] == 0
    sends = [d for d in tx["details"] if d["category"] == "send"]
    assert sends and sends[0]["address"] == outside and sends[0]["amount"] == Decimal("-2") and sends[0]["fee"] < 0
    block = bcash_node.generate(1)[0]
    assert txid in bcash_node.rpc("getblock", block)["tx"]
    # the wallet follows the chain a moment behind
    wait_until(lambda: True if bcash_node.wallet_rpc("gettransaction", txid)["confirmations"] == 1 else None,
               10, "the send's first confirmation in the wallet")
    listed = bcash_node.wallet_rpc("listsinceblock")  # bcash 1.1.1 crashes without a block hash
    assert txid in {t["txid"] for t in listed["transactions"]}
    assert listed["lastblock"] == block
    before = bcash_node.rpc("getblockhash", bcash_node.height() - 1)
    since = bcash_node.wallet_rpc("listsinceblock", before)["transactions"]
    assert txid in {t["txid"] for t in since}
    assert txid not in {t["txid"] for t in bcash_node.wallet_rpc("listsinceblock", block)["transactions"]}
    categories = {t["category"] for t in bcash_node.wallet_rpc("listtransactions", "default", 1000, 0)}
    # every coin the wallet received here is a coinbase (bcash 1.1.1 labels them all "receive")
    assert categories == {"generate", "immature", "send"}
    assert str(bcash_node.wallet_rpc("getnewaddress")).startswith("bchreg:")  # no account given


def test_parent_and_child_in_canonical_order(bcash_node: BcashNode) -> None:
    """A child whose txid sorts before its parent's: the template lists them by txid (the block's canonical
    order) and still answers (bcash 1.1.1's depends code asserted parent-first); a block of it is valid."""
    if Decimal(bcash_node.wallet_rpc("getbalance")) < 10:
        bcash_node.generate(101)
        bcash_node.wait_for_wallet()
    to = bcash_node.new_address()
    parent = bcash_node.wallet_rpc("sendtoaddress", to, Decimal("1"))
    vout = next(d["vout"] for d in bcash_node.wallet_rpc("gettransaction", parent)["details"] if d["address"] == to)
    key = bcash_node.wallet_rpc("dumpprivkey", to)
    # a child spending the parent's output, its amount chosen so that its txid sorts before the parent's
    for fee in range(1000, 1100):
        raw = bcash_node.rpc("createrawtransaction", [{"txid": parent, "vout": vout}],
                             {bcash_node.new_address(): Decimal(100_000_000 - fee) / 100_000_000})
        signed = bcash_node.rpc("signrawtransaction", raw, [], [key])["hex"]
        child = sha256d(bytes.fromhex(signed))[::-1].hex()
        if child < parent:
            break
    else:
        pytest.fail("no child txid below the parent's in 100 tries")
    assert bcash_node.rpc("sendrawtransaction", signed) == child
    children = [child]
    gbt = bcash_node.rpc("getblocktemplate", {})
    txids = [t["txid"] for t in gbt["transactions"]]
    assert txids == sorted(txids) and parent in txids and children[0] in txids
    assert txids.index(children[0]) < txids.index(parent)
    # the pool's own RPC call reads the node's answer through the native scanner (daemon.gbt), to the same
    # transactions and the same template as the ordinary parse of the node's answer
    endpoint = DaemonEndpoint("bcash", bcash_node.url, bcash_node.rpc_user, bcash_node.rpc_password)
    scanned = blocking_call(endpoint, "getblocktemplate", [{}])
    assert isinstance(scanned["transactions"], ScannedTransactions)
    assert list(scanned["transactions"]) == [{k: t[k] for k in ("data", "txid", "hash") if k in t}
                                             for t in gbt["transactions"]]
    assert template_from_gbt(scanned, RBCH) == template_from_gbt(gbt, RBCH)
    block = bcash_node.generate(1)[0]
    assert set(txids) <= set(bcash_node.rpc("getblock", block)["tx"])


async def test_submitblock_refusal_and_side_chain(bcash_factory: Callable[..., BcashNode]) -> None:
    node = bcash_factory("node", memory=True)
    other = bcash_factory("other", memory=True)
    assert normalize_submit_result(node.rpc("submitblock", (bytes(80) + b"\x00").hex())) == "high-hash"
    mine = node.generate(1)[0]  # the node's own block at height 1, its coinbase to its wallet
    node.wait_for_wallet()
    longer = other.generate(2)
    raw = [other.rpc("getblock", h, False) for h in longer]
    assert node.rpc("submitblock", raw[0]) is None  # valid, but only on a side chain: still null
    assert node.rpc("getbestblockhash") == mine
    client = DaemonClient([DaemonEndpoint(name="bcash", url=node.url, user=node.rpc_user,
                                          password=node.rpc_password)], RBCH, retries=0)
    try:
        assert not await client.is_in_main_chain(1, longer[0])  # what the pool checks after a null
        assert node.rpc("submitblock", raw[1]) is None  # now the longer chain wins
        assert await client.is_in_main_chain(1, longer[0])
        assert not await client.is_in_main_chain(1, mine)
    finally:
        await client.close()
    assert normalize_submit_result(node.rpc("submitblock", raw[1])) == "duplicate"
    node.wait_for_wallet()

    def orphaned() -> bool | None:
        entries = node.wallet_rpc("listtransactions", "default", 10, 0)
        return True if any(e["category"] == "orphan" for e in entries) else None

    wait_until(orphaned, 10, "the reorged-away coinbase to be listed as orphan")
