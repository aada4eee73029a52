"""Pytest fixtures (and helpers) for tests that need real litecoind regtest nodes.

Register with ``pytest_plugins = ["daemon_fixtures"]`` in conftest, or import the fixtures into a test module.

* ``litecoin_pair``: module-scoped peered pair (A = the pool's daemon, B = its peer), wallet ``test`` on both,
  one block mined so getblocktemplate works, MWEB not active (``defined``). Node A runs with
  ``-blocknotify`` sending to UDP ``127.0.0.1:<pair.notify_port>`` (see :func:`free_udp_port`).
* ``litecoin_pair_mweb``: module-scoped pair with MWEB activated (templates carry ``mweb``).
* ``ltc_regtest``: the ``litecoin-regtest`` coin.
* ``ltc_client``: a function-scoped :class:`DaemonClient` over node A then node B.
* :func:`build_block`: a block (hex, hash) from a non-MWEB template with just a coinbase, whose PoW does or
  does not meet the target; for submitblock tests.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from stratum_pool.coins import Coin, get_coin
from stratum_pool.daemon.notify import blocknotify_command
from stratum_pool.daemon.rpc import DaemonClient
from stratum_pool.devnet.litecoind import LitecoinRegtest, find_litecoind

requires_litecoind = pytest.mark.skipif(find_litecoind() is None, reason="litecoind is not installed")


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port on ``host`` that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class NotifyingRegtest(LitecoinRegtest):
    """A pair whose node A runs ``-blocknotify`` to UDP ``127.0.0.1:notify_port``."""

    notify_port: int


def _start_pair(root: Path, *, mweb: bool) -> NotifyingRegtest:
    port = free_udp_port()
    notify_args = [f"-blocknotify={blocknotify_command('127.0.0.1', port)}"]
    # Activating MWEB mines ~430 blocks: -blocknotify would start a process for each, so node A gets it
    # only afterwards (restart).
    net = NotifyingRegtest(root, mweb_activatable=mweb, extra_args_a=[] if mweb else notify_args)
    net.notify_port = port
    try:
        net.start()
        if mweb:
            net.activate_mweb()
            net.restart_a(notify_args)
    except BaseException:
        net.stop()
        raise
    return net


@pytest.fixture(scope="module")
def litecoin_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotifyingRegtest]:
    if find_litecoind() is None:
        pytest.skip("litecoind is not installed")
    net = _start_pair(tmp_path_factory.mktemp("ltc-pair"), mweb=False)
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture(scope="module")
def litecoin_pair_mweb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotifyingRegtest]:
    if find_litecoind() is None:
        pytest.skip("litecoind is not installed")
    net = _start_pair(tmp_path_factory.mktemp("ltc-pair-mweb"), mweb=True)
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture
def ltc_regtest() -> Coin:
    return get_coin("litecoin", "regtest")


@pytest.fixture
async def ltc_client(litecoin_pair: NotifyingRegtest, ltc_regtest: Coin) -> AsyncIterator[DaemonClient]:
    client = DaemonClient([litecoin_pair.a.endpoint(), litecoin_pair.b.endpoint()], ltc_regtest)
    try:
        yield client
    finally:
        await client.close()


# --- a minimal block builder for submitblock tests ---------------------------------------------------------
def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    return b"\xfe" + n.to_bytes(4, "little")


def _bip34_height(height: int) -> bytes:
    """``CScript() << height`` as Core writes it (OP_1..OP_16 for small heights)."""
    if 1 <= height <= 16:
        return bytes([0x50 + height])
    if height == 0:
        return b"\x00"
    body = height.to_bytes((height.bit_length() + 8) // 8, "little")
    return bytes([len(body)]) + body


def scrypt_pow(header: bytes) -> int:
    """Litecoin's proof-of-work hash of an 80-byte header as an integer (little-endian)."""
    return int.from_bytes(hashlib.scrypt(header, salt=header, n=1024, r=1, p=1, dklen=32), "little")


def bits_to_target(bits_hex: str) -> int:
    bits = int(bits_hex, 16)
    return (bits & 0xFFFFFF) << (8 * ((bits >> 24) - 3))


def build_block(template: dict[str, Any], *, valid_pow: bool = True, tag: int = 0) -> tuple[str, str]:
    """(block hex, block hash in display order): the template's header fields, a single coinbase paying the
    block subsidy (template fees excluded) to ``OP_TRUE``, and a nonce whose scrypt hash does
    (``valid_pow``) or does not meet the target. Templates with MWEB active are not supported."""
    fees = sum(int(tx.get("fee", 0)) for tx in template.get("transactions", []))
    value = int(template["coinbasevalue"]) - fees
    script_sig = _bip34_height(int(template["height"])) + b"\x04" + tag.to_bytes(4, "little")
    coinbase = (
        (1).to_bytes(4, "little") + b"\x01" + b"\x00" * 32 + b"\xff" * 4
        + _varint(len(script_sig)) + script_sig + b"\xff" * 4
        + b"\x01" + value.to_bytes(8, "little") + b"\x01\x51"
        + b"\x00" * 4
    )
    merkle_root = _sha256d(coinbase)
    target = bits_to_target(template["bits"])
    prefix = (
        int(template["version"]).to_bytes(4, "little")
        + bytes.fromhex(template["previousblockhash"])[::-1]
        + merkle_root
        + int(template["curtime"]).to_bytes(4, "little")
        + bytes.fromhex(template["bits"])[::-1]
    )
    for nonce in range(1 << 20):
        header = prefix + nonce.to_bytes(4, "little")
        if (scrypt_pow(header) <= target) == valid_pow:
            block = header + _varint(1) + coinbase
            return block.hex(), _sha256d(header)[::-1].hex()
    raise RuntimeError("no suitable nonce found")
