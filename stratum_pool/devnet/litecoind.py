"""Real Litecoin Core regtest daemons for ``make run`` and the tests.

Litecoin Core refuses ``getblocktemplate`` without a peer (-9, "Litecoin Core is not connected!") even on
regtest, and answers -10 (initial block download) on a fresh chain until its first block. So the unit here
is a *pair* of peered regtest nodes on loopback: node A is the one the pool talks to, node B is its peer.

    with LitecoinRegtest.start(tmpdir) as net:
        net.a.rpc("getblockcount")
        net.generate(1)

Everything started is stopped when the context exits (also on errors). Works as root.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException

from stratum_pool.daemon.rpc import DaemonEndpoint
from stratum_pool.devnet.common import ManagedProcess, free_port, wait_until

# RPC codes Core answers while it cannot serve yet.
RPC_IN_WARMUP = -28

#: BIP9 window on regtest; MWEB (with -vbparams=mweb:0:<far future>) is active after three windows.
REGTEST_BIP9_WINDOW = 144
MWEB_VBPARAMS = "mweb:0:999999999999"


def rpcauth_line(user: str, password: str) -> str:
    """The ``-rpcauth`` value for ``user``/``password`` (Core's share/rpcauth/rpcauth.py)."""
    salt = secrets.token_hex(16)
    digest = hmac.new(salt.encode(), password.encode(), hashlib.sha256).hexdigest()
    return f"{user}:{salt}${digest}"


def find_litecoind() -> str | None:
    """The path of ``litecoind`` on PATH, or None."""
    return shutil.which("litecoind")


class LitecoinNode:
    """One litecoind regtest process with its own datadir and loopback ports.

    Authentication: ``-rpcauth`` (user/password) is used rather than ``-rpcpassword`` so that Core *also*
    writes its ``.cookie`` file; both ways of logging in work on every node.
    """

    def __init__(self, datadir: Path, *, name: str = "node", binary: str | None = None,
                 rpc_user: str = "stratum", rpc_password: str | None = None,
                 p2p_port: int | None = None, rpc_port: int | None = None,
                 extra_args: Sequence[str] = (), mweb_activatable: bool = False,
                 wallet: str | None = "test") -> None:
        self.name = name
        self.datadir = Path(datadir)
        self.binary = binary or find_litecoind() or "litecoind"
        self.rpc_user = rpc_user
        self.rpc_password = rpc_password or secrets.token_hex(16)
        self.p2p_port = p2p_port or free_port()
        self.rpc_port = rpc_port or free_port()
        self.extra_args = list(extra_args)
        self.mweb_activatable = mweb_activatable
        self.wallet = wallet
        self.process: ManagedProcess | None = None

    # --- addresses and credentials -------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The RPC URL without credentials."""
        return f"http://127.0.0.1:{self.rpc_port}/"

    @property
    def cookie_file(self) -> Path:
        return self.datadir / "regtest" / ".cookie"

    @property
    def p2p_address(self) -> str:
        return f"127.0.0.1:{self.p2p_port}"

    @property
    def log_path(self) -> Path:
        return self.datadir / f"{self.name}.log"

    def endpoint(self, *, name: str | None = None, use_cookie: bool = False,
                 timeout: float = 30.0) -> DaemonEndpoint:
        """A :class:`DaemonEndpoint` for the pool's daemon client (password or cookie auth)."""
        if use_cookie:
            return DaemonEndpoint(name or self.name, self.url, cookie_file=self.cookie_file, timeout=timeout)
        return DaemonEndpoint(name or self.name, self.url, user=self.rpc_user, password=self.rpc_password,
                              timeout=timeout)

    def argv(self) -> list[str]:
        args = [
            self.binary,
            "-regtest",
            f"-datadir={self.datadir}",
            "-server=1",
            "-daemon=0",
            "-printtoconsole=1",
            "-listen=1",
            f"-bind=127.0.0.1:{self.p2p_port}",
            f"-port={self.p2p_port}",
            f"-rpcport={self.rpc_port}",
            "-rpcbind=127.0.0.1",
            "-rpcallowip=127.0.0.1",
            f"-rpcauth={rpcauth_line(self.rpc_user, self.rpc_password)}",
            "-rpcthreads=16",
            "-rpcworkqueue=64",
            "-dnsseed=0",
            "-discover=0",
            "-upnp=0",
            "-fallbackfee=0.0001",
            "-whitelist=noban,relay@127.0.0.1",
            "-txindex=1",
            "-keypool=20",  # a fresh wallet otherwise spends ~1 s filling 3000 keys
        ]
        if self.mweb_activatable:
            args.append(f"-vbparams={MWEB_VBPARAMS}")
        return args + self.extra_args

    # --- life cycle --------------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """Start the daemon and wait until its RPC answers (warm-up finished)."""
        if self.running:
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        (self.datadir / "litecoin.conf").touch()
        self.process = ManagedProcess(self.argv(), self.log_path)
        self.process.start()

        def ready() -> bool | None:
            if not self.running:
                raise RuntimeError(f"litecoind {self.name} exited:\n{self.log_tail()}")
            try:
                self.rpc("getblockcount", timeout=5)
            except JSONRPCException as exc:
                if exc.code == RPC_IN_WARMUP:
                    return None
                raise
            return True

        try:
            wait_until(ready, timeout, f"litecoind {self.name} RPC on port {self.rpc_port}", interval=0.1)
        except BaseException:
            self.stop()
            raise

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def stop(self, timeout: float = 30.0) -> None:
        """Ask for a clean shutdown with the ``stop`` RPC, then SIGTERM/SIGKILL if it lingers."""
        proc = self.process
        if proc is None or proc.proc is None:
            return
        if proc.running:
            try:
                self.rpc("stop", timeout=5)
            except Exception:  # already going down, or RPC not up: SIGTERM below
                pass
            try:
                proc.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        proc.stop(timeout=10)

    def restart(self, extra_args: Sequence[str] | None = None, timeout: float = 60.0) -> None:
        """Stop and start again (same datadir and ports), optionally with new extra args; reloads the
        wallet."""
        self.stop()
        if extra_args is not None:
            self.extra_args = list(extra_args)
        self.process = None
        self.start(timeout)
        if self.wallet:
            self.create_wallet(self.wallet)

    def log_tail(self, lines: int = 30) -> str:
        return self.process.log_tail(lines) if self.process else ""

    def __enter__(self) -> LitecoinNode:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- RPC ---------------------------------------------------------------------------------------------
    def rpc(self, method: str, *params: Any, wallet: str | None = None, timeout: float = 60.0) -> Any:
        """A synchronous RPC call (fresh connection each time; Decimals as python-bitcoinrpc returns them)."""
        path = f"/wallet/{wallet}" if wallet else "/"
        proxy = AuthServiceProxy(
            f"http://{self.rpc_user}:{self.rpc_password}@127.0.0.1:{self.rpc_port}{path}",
            method, timeout=timeout,
        )
        return proxy(*params)

    def create_wallet(self, name: str | None = None) -> None:
        """Create (or load) the wallet ``name`` (0.21 has no default wallet)."""
        wallet = name or self.wallet or "test"
        loaded = self.rpc("listwallets")
        if wallet in loaded:
            return
        try:
            self.rpc("createwallet", wallet)
        except JSONRPCException as exc:
            if exc.code != -4:  # "Wallet ... already exists": load it
                raise
            self.rpc("loadwallet", wallet)
        self.wallet = wallet

    def new_address(self, kind: str = "bech32") -> str:
        """A fresh address of the node's wallet: ``legacy``, ``p2sh-segwit``, ``bech32`` or ``mweb``."""
        return str(self.rpc("getnewaddress", "", kind, wallet=self.wallet))

    def generate(self, n: int = 1, address: str | None = None) -> list[str]:
        """Mine ``n`` blocks to ``address`` (a new wallet address by default); returns their hashes."""
        addr = address or self.new_address()
        return [str(h) for h in self.rpc("generatetoaddress", n, addr, 10_000_000, timeout=600)]

    def connect_to(self, other: LitecoinNode, timeout: float = 30.0) -> None:
        """Peer with ``other`` and wait until both see the connection."""
        try:
            self.rpc("addnode", other.p2p_address, "onetry")  # connects now
        except JSONRPCException:
            pass
        try:
            self.rpc("addnode", other.p2p_address, "add")  # and reconnects if the link drops
        except JSONRPCException as exc:
            if exc.code != -23:  # "Node already added"
                raise

        def connected() -> bool | None:
            if self.rpc("getconnectioncount") > 0 and other.rpc("getconnectioncount") > 0:
                return True
            time.sleep(0.2)
            try:
                self.rpc("addnode", other.p2p_address, "onetry")
            except JSONRPCException:
                pass
            return None

        wait_until(connected, timeout, f"{self.name} to peer with {other.name}", interval=0.1)


class LitecoinRegtest:
    """A peered pair of regtest nodes: ``a`` (the pool's daemon) and ``b`` (its peer).

    ``start()`` creates a wallet on both, connects them and (unless ``mine_first_block=False``) mines one
    block on A so that ``getblocktemplate`` leaves initial block download. With ``mweb_activatable=True``
    both nodes run with ``-vbparams=mweb:0:999999999999`` and :meth:`activate_mweb` mines through the BIP9
    windows until MWEB is active (templates then carry an ``mweb`` field).
    """

    def __init__(self, root: Path | None = None, *, mweb_activatable: bool = False,
                 extra_args_a: Sequence[str] = (), extra_args_b: Sequence[str] = (),
                 binary: str | None = None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ltc-regtest-")
            root = Path(self._tmp.name)
        self.root = Path(root)
        self.a = LitecoinNode(self.root / "a", name="a", binary=binary, extra_args=extra_args_a,
                              mweb_activatable=mweb_activatable)
        self.b = LitecoinNode(self.root / "b", name="b", binary=binary, extra_args=extra_args_b,
                              mweb_activatable=mweb_activatable)
        self.mweb_activatable = mweb_activatable

    @classmethod
    def start_pair(cls, root: Path | None = None, *, mine_first_block: bool = True,
                   **kwargs: Any) -> LitecoinRegtest:
        """Start a pair (see the class docstring); on any failure everything started is stopped."""
        net = cls(root, **kwargs)
        net.start(mine_first_block=mine_first_block)
        return net

    def start(self, *, mine_first_block: bool = True, timeout: float = 60.0) -> None:
        try:
            self.a.start(timeout)
            self.b.start(timeout)
            self.a.create_wallet()
            self.b.create_wallet()
            self.b.connect_to(self.a)
            if mine_first_block:
                self.generate(1)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in (self.b, self.a):
            try:
                node.stop()
            except Exception:
                if node.process is not None:
                    node.process.stop(timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LitecoinRegtest:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def nodes(self) -> tuple[LitecoinNode, LitecoinNode]:
        return (self.a, self.b)

    def new_address(self, kind: str = "bech32") -> str:
        return self.a.new_address(kind)

    def generate(self, n: int = 1, address: str | None = None, *, on: str = "a") -> list[str]:
        """Mine ``n`` blocks on node ``on`` ("a" or "b") and wait until both nodes have the new tip."""
        node = self.a if on == "a" else self.b
        hashes = node.generate(n, address)
        if hashes:
            self.sync(hashes[-1])
        return hashes

    def sync(self, tip: str | None = None, timeout: float = 30.0) -> str:
        """Wait until both nodes have the same best block (``tip`` if given); returns it."""
        def same() -> str | None:
            ha = self.a.rpc("getbestblockhash")
            hb = self.b.rpc("getbestblockhash")
            if ha == hb and (tip is None or ha == tip):
                return str(ha)
            return None

        return wait_until(same, timeout, "the two litecoind nodes to agree on the tip")

    def restart_a(self, extra_args: Sequence[str] | None = None) -> None:
        """Restart node A (e.g. with ``-blocknotify`` after a long :meth:`activate_mweb`) and re-peer."""
        self.a.restart(extra_args)
        self.b.connect_to(self.a)
        self.sync()

    def mweb_status(self) -> str:
        """``defined``, ``started``, ``locked_in``, ``active`` or ``failed`` (node A's view)."""
        info = self.a.rpc("getblockchaininfo")
        fork = info.get("softforks", {}).get("mweb", {})
        bip9 = fork.get("bip9", {})
        return str(bip9.get("status") or ("active" if fork.get("active") else "defined"))

    def activate_mweb(self, max_blocks: int = 5 * REGTEST_BIP9_WINDOW) -> int:
        """Mine until MWEB is active (needs ``mweb_activatable=True``); returns the height reached."""
        if not self.mweb_activatable:
            raise RuntimeError("start the pair with mweb_activatable=True to activate MWEB")
        mined = 0
        addr = self.a.new_address()
        while self.mweb_status() != "active":
            if mined >= max_blocks:
                raise RuntimeError(f"MWEB not active after {mined} blocks (status {self.mweb_status()})")
            height = int(self.a.rpc("getblockcount"))
            # to the next window boundary (state changes only at multiples of the window)
            step = REGTEST_BIP9_WINDOW - (height + 1) % REGTEST_BIP9_WINDOW or REGTEST_BIP9_WINDOW
            self.generate(step, addr)
            mined += step
        # The first MWEB block's HogEx (integrating transaction) has no earlier HogEx output to spend: until
        # a block carries a peg-in, getblocktemplate fails with "-1: CreateNewBlock: TestBlockValidity
        # failed: bad-txns-vin-empty". Peg in from the wallet and mine it, as Litecoin's own tests do.
        if self._hogex_missing():
            mweb_addr = self.a.new_address("mweb")
            self.a.rpc("sendtoaddress", mweb_addr, 1, wallet=self.a.wallet)
            self.generate(1, addr)
        return int(self.a.rpc("getblockcount"))

    def _hogex_missing(self) -> bool:
        try:
            self.a.rpc("getblocktemplate", {"rules": ["mweb", "segwit"]})
        except JSONRPCException as exc:
            if "bad-txns-vin-empty" in str(exc.message):
                return True
            raise
        return False


@contextmanager
def litecoin_regtest(root: Path | None = None, **kwargs: Any) -> Iterator[LitecoinRegtest]:
    """Context manager form of :meth:`LitecoinRegtest.start_pair`."""
    net = LitecoinRegtest.start_pair(root, **kwargs)
    try:
        yield net
    finally:
        net.stop()
