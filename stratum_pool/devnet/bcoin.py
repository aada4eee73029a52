"""bcoin (npm ``bcoin`` 1.0.2) as a real sha256d Bitcoin regtest daemon for ``make run`` and the tests.

``install()`` puts bcoin into ``stratum_pool/devnet/bcoin/node_modules`` (``python -m
stratum_pool.devnet.bcoin install``); ``BcoinNode`` runs ``bcoin/launcher.js`` (a FullNode with the
wallet plugin, Core's regtest address prefixes and an on-disk database fix, see the launcher's header)
and talks JSON-RPC to it.

bcoin serves node RPC (getblocktemplate, submitblock, generatetoaddress, validateaddress, ...) on the
node HTTP port and wallet RPC (getnewaddress, sendmany, getbalance, getreceivedbyaddress, ...) on the
wallet HTTP port, both at ``/`` with HTTP basic auth: any user name, the API key as password.

Regtest facts worth knowing (bcoin 1.0.2):

* segwit is a BIP9 deployment that is not active at genesis: it activates at height 432 when every
  block signals (``activate_segwit``). Before that, outputs to bcrt1 addresses can be created but the
  wallet's witness coins cannot be spent; the wallet's default account gives legacy ``m``/``n``
  addresses (``new_address("legacy")``), a second account ``segwit`` gives bcrt1 addresses.
* getblocktemplate needs no peer on regtest; submitblock answers null on success (also for a block
  that lands on a side branch: compare getbestblockhash) and ``"rejected: <reason>"`` otherwise.
* there is no ZMQ and no -blocknotify: use longpoll (longpollid) or polling.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bitcoinrpc.authproxy import AuthServiceProxy

from stratum_pool.devnet.common import ManagedProcess, free_port, wait_until

__all__ = [
    "BCOIN_VERSION",
    "DEFAULT_API_KEY",
    "LAUNCHER",
    "PACKAGE_DIR",
    "BcoinError",
    "BcoinInstallError",
    "BcoinNode",
    "install",
    "is_installed",
    "main",
    "running_node",
    "start_pair",
]

BCOIN_VERSION = "1.0.2"
PACKAGE_DIR = Path(__file__).resolve().with_name("bcoin")
LAUNCHER = PACKAGE_DIR / "launcher.js"
NODE_MODULES = PACKAGE_DIR / "node_modules"

DEFAULT_API_KEY = "stratum-pool-devnet"
DEFAULT_RPC_USER = "bcoin"
SEGWIT_ACCOUNT = "segwit"


class BcoinError(RuntimeError):
    """bcoin did not start, stopped, or answered in a way we cannot use."""


class BcoinInstallError(BcoinError):
    """node/npm are missing or ``npm install`` failed."""


# --------------------------------------------------------------------------------------------------
# install
# --------------------------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BcoinInstallError(
            f"{name!r} is not on PATH: bcoin needs Node.js and npm (Debian: sudo apt-get install nodejs npm)")
    return path


class NpmNode:
    """How an npm-installed regtest node (bcoin; bcash, in devnet/bcash.py) is installed into
    ``package_dir/node_modules``: ``npm install``, ``npm rebuild`` of its native add-ons, ``after_install``
    (bcash's patches), a check that ``check_js`` loads, and a stamp of package.json (plus ``stamp_extra``) and
    the node version, so that a changed one installs again. Install errors are ``error``."""

    def __init__(self, package: str, package_dir: Path, rebuild: tuple[str, ...], check_js: str,
                 error: type[BcoinError], *, stamp_extra: bytes = b"",
                 after_install: Callable[[], None] | None = None) -> None:
        self.package = package
        self.package_dir = package_dir
        self.node_modules = package_dir / "node_modules"
        self.rebuild = rebuild
        self.check_js = check_js
        self.error = error
        self.stamp_extra = stamp_extra
        self.after_install = after_install
        self.stamp = self.node_modules / ".stratum-pool-install.json"
        self.lock = self.node_modules / ".stratum-pool-install.lock"

    def stamp_value(self, node: str) -> dict[str, str]:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
        digest = hashlib.sha256((self.package_dir / "package.json").read_bytes() + self.stamp_extra).hexdigest()
        return {"package_json_sha256": digest, "node_version": done.stdout.strip()}

    def is_installed(self) -> bool:
        """True when node_modules holds the package installed from the current package.json with this node."""
        if not (self.node_modules / self.package / "package.json").is_file() or not self.stamp.is_file():
            return False
        try:
            return bool(json.loads(self.stamp.read_text()) == self.stamp_value(_tool("node")))
        except (OSError, ValueError, subprocess.CalledProcessError, BcoinError):
            return False

    def run(self, argv: list[str], what: str, timeout: float) -> None:
        """One step of the install, run in the package directory; the error names it, with the output's tail."""
        try:
            done = subprocess.run(argv, cwd=self.package_dir, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise self.error(f"{what} timed out after {timeout:.0f}s") from exc
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise self.error(f"{what} failed (exit {done.returncode}) in {self.package_dir}:\n{tail}")

    def install(self, force: bool, timeout: float) -> bool:
        """Install unless it is there already (or ``force``); True when npm ran. Safe to call from several
        processes at once (a file lock)."""
        node = _tool("node")
        npm = _tool("npm")
        self.node_modules.mkdir(exist_ok=True)
        with open(self.lock, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not force and self.is_installed():
                    return False
                self.stamp.unlink(missing_ok=True)
                self.run([npm, "install", "--no-audit", "--no-fund"], "npm install", timeout)
                self.run([npm, "rebuild", *self.rebuild], f"npm rebuild {' '.join(self.rebuild)}", timeout)
                if not (self.node_modules / self.package / "package.json").is_file():
                    raise self.error(f"npm install finished but {self.node_modules / self.package} is missing")
                if self.after_install is not None:
                    self.after_install()
                self.run([node, "-e", self.check_js], f"loading {self.package} after install", 60)
                self.stamp.write_text(json.dumps(self.stamp_value(node), indent=1) + "\n")
                return True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


# rebuilt: the native modules npm must build itself (the rest are prebuilt or fall back to JavaScript)
_NPM = NpmNode("bcoin", PACKAGE_DIR, ("mrmr", "bsip"), "require('bcoin/lib/node/fullnode'); require('leveldown')",
               BcoinInstallError)


def is_installed() -> bool:
    """True when node_modules holds bcoin installed from the current package.json with this node."""
    return _NPM.is_installed()


def install(force: bool = False, timeout: float = 600.0) -> bool:
    """Install bcoin into ``PACKAGE_DIR/node_modules`` unless it is there already.

    Runs ``npm install`` when node_modules/bcoin is missing, package.json or the node version changed
    (a stamp file), or ``force``. Safe to call from several processes at once (a file lock).
    Returns True when npm ran.
    """
    return _NPM.install(force, timeout)


# --------------------------------------------------------------------------------------------------
# one node
# --------------------------------------------------------------------------------------------------


def _peer(p: str | int) -> str:
    return f"127.0.0.1:{p}" if isinstance(p, int) else p


class BcoinNode:
    """One bcoin regtest node (with wallet) on 127.0.0.1.

    Ports left as None are picked with ``free_port()``. ``peers`` are P2P ports or ``host:port``
    strings; when given, the node connects only to them (``--only``). ``memory=True`` keeps chain and
    wallet in RAM (nothing survives a restart).
    """

    def __init__(self, datadir: Path, http_port: int | None = None, wallet_port: int | None = None,
                 p2p_port: int | None = None, api_key: str = DEFAULT_API_KEY,
                 peers: Sequence[str | int] = (), memory: bool = False, log_level: str = "info",
                 extra_args: Sequence[str] = ()) -> None:
        self.datadir = Path(datadir).resolve()
        self.http_port = http_port or free_port()
        self.wallet_port = wallet_port or free_port()
        self.p2p_port = p2p_port or free_port()
        self.api_key = api_key
        self.peers = tuple(_peer(p) for p in peers)
        self.memory = memory
        self.log_level = log_level
        self.extra_args = tuple(extra_args)
        self.process: ManagedProcess | None = None
        self._mining_address: str | None = None

    # ---- what a node of the bcoin family runs (bcash.BcashNode overrides these) ----

    launcher: Path = LAUNCHER
    package_dir: Path = PACKAGE_DIR
    env: dict[str, str] = {"BCOIN_NETWORK": "regtest"}
    kind = "bcoin"

    def ensure_installed(self) -> None:
        if not is_installed():
            install()

    # ---- addresses of the node, for the pool's config ----

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        """Node JSON-RPC URL (getblocktemplate, submitblock, ...), without credentials."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def wallet_url(self) -> str:
        """Wallet JSON-RPC URL (getnewaddress, sendmany, ...), without credentials."""
        return f"http://{self.host}:{self.wallet_port}"

    @property
    def rpc_user(self) -> str:
        """bcoin ignores the user name; any works."""
        return DEFAULT_RPC_USER

    @property
    def rpc_password(self) -> str:
        return self.api_key

    @property
    def credentials(self) -> tuple[str, str]:
        return self.rpc_user, self.rpc_password

    @property
    def p2p_address(self) -> str:
        return f"{self.host}:{self.p2p_port}"

    def daemon_config(self) -> dict[str, str]:
        """The ``[[coins.daemons]]`` table for this node."""
        return {"name": f"{self.kind}-{self.http_port}", "url": self.url, "user": self.rpc_user,
                "password": self.rpc_password}

    @property
    def chain_dir(self) -> Path:
        """Where chain, wallet and bcoin's debug.log live (bcoin appends the network name)."""
        return self.datadir / "regtest"

    @property
    def log_path(self) -> Path:
        return self.datadir / "launcher.log"

    # ---- process ----

    def argv(self) -> list[str]:
        args = [
            _tool("node"), str(self.launcher),
            "--network=regtest",
            f"--prefix={self.datadir}",
            f"--wallet-prefix={self.chain_dir}",
            f"--memory={'true' if self.memory else 'false'}",
            f"--http-host={self.host}", f"--http-port={self.http_port}", f"--api-key={self.api_key}",
            f"--wallet-http-host={self.host}", f"--wallet-http-port={self.wallet_port}",
            f"--wallet-api-key={self.api_key}",
            f"--host={self.host}", f"--port={self.p2p_port}", "--listen=true",
            "--workers=false", "--seeds=,",
            f"--log-level={self.log_level}",
        ]
        if self.peers:
            args.append(f"--only={','.join(self.peers)}")
        return [*args, *self.extra_args]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def start(self, timeout: float = 60.0) -> None:
        """Launch bcoin and wait until both node and wallet RPC answer."""
        if self.running:
            return
        self.ensure_installed()
        self.datadir.mkdir(parents=True, exist_ok=True)
        if self.memory:
            self._mining_address = None  # a memory node's wallet starts empty every time
        self.process = ManagedProcess(self.argv(), self.log_path, env=dict(self.env), cwd=self.package_dir)
        self.process.start()
        process = self.process

        def probe() -> bool | None:
            if not process.running:
                return False
            self.rpc("getblockchaininfo", timeout=5)
            self.wallet_rpc("getwalletinfo", timeout=5)
            return True

        try:
            up = wait_until(probe, timeout, f"{self.kind} RPC on {self.url}")
        except TimeoutError as exc:
            self.stop()
            raise BcoinError(f"{exc}\n--- {self.log_path} ---\n{process.log_tail()}") from exc
        if not up or not process.running:
            raise BcoinError(f"bcoin exited with {process.proc.returncode if process.proc else None}"
                             f" during start\n--- {self.log_path} ---\n{process.log_tail()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (the launcher closes the databases and exits 0), SIGKILL after ``timeout``."""
        if self.process is None:
            return None
        return self.process.stop(timeout)

    @property
    def returncode(self) -> int | None:
        if self.process is None or self.process.proc is None:
            return None
        return self.process.proc.poll()

    def log_tail(self, lines: int = 30) -> str:
        return self.process.log_tail(lines) if self.process is not None else ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ---- RPC ----

    def _proxy(self, port: int, timeout: float) -> AuthServiceProxy:
        return AuthServiceProxy(f"http://{self.rpc_user}:{self.api_key}@{self.host}:{port}", timeout=timeout)

    def rpc(self, method: str, *params: Any, timeout: float = 30.0) -> Any:
        """Node JSON-RPC; raises ``bitcoinrpc.authproxy.JSONRPCException`` on an RPC error.
        Numbers with a fraction come back as ``Decimal``. Thread-safe (a connection per call)."""
        return getattr(self._proxy(self.http_port, timeout), method)(*params)

    def wallet_rpc(self, method: str, *params: Any, timeout: float = 30.0) -> Any:
        """Wallet JSON-RPC (the wallet selected with selectwallet; ``primary`` by default)."""
        return getattr(self._proxy(self.wallet_port, timeout), method)(*params)

    def wallet_http(self, verb: str, path: str, body: dict[str, Any] | None = None,
                    timeout: float = 30.0) -> Any:
        """bcoin's wallet REST API (e.g. ``GET /wallet/primary/balance``); JSON in, JSON out."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.wallet_url}{path}", data=data, method=verb)
        token = base64.b64encode(f"{self.rpc_user}:{self.api_key}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise BcoinError(f"{verb} {path}: HTTP {exc.code}: {exc.read()[:500]!r}") from exc
        return json.loads(raw) if raw else None

    # ---- chain and wallet helpers ----

    def height(self) -> int:
        return int(self.rpc("getblockcount"))

    def new_address(self, kind: str = "bech32") -> str:
        """A fresh address of the ``primary`` wallet: ``bech32`` (bcrt1..., account ``segwit``) or
        ``legacy`` (m/n..., the default account, spendable before segwit activates)."""
        if kind == "legacy":
            return str(self.wallet_rpc("getnewaddress", ""))
        if kind != "bech32":
            raise ValueError(f"address kind must be 'bech32' or 'legacy', not {kind!r}")
        self._ensure_segwit_account()
        return str(self.wallet_rpc("getnewaddress", SEGWIT_ACCOUNT))

    def _ensure_segwit_account(self) -> None:
        path = f"/wallet/primary/account/{SEGWIT_ACCOUNT}"
        if self.wallet_http("GET", path) is None:
            self.wallet_http("PUT", path, {"witness": True})

    @property
    def mining_address(self) -> str:
        """A wallet address (legacy, so its coinbases are spendable at once) used by ``generate``."""
        if self._mining_address is None:
            self._mining_address = self.new_address("legacy")
        return self._mining_address

    def generate(self, n: int, address: str | None = None) -> list[str]:
        """Mine ``n`` blocks paying ``address`` (default ``mining_address``); their hashes."""
        hashes = self.rpc("generatetoaddress", n, address or self.mining_address, timeout=30.0 + n)
        return [str(h) for h in hashes]

    def segwit_status(self) -> str:
        info = self.rpc("getblockchaininfo")
        return str(info["bip9_softforks"]["segwit"]["status"])

    def activate_segwit(self, address: str | None = None) -> int:
        """Mine until segwit is active (height 432 from genesis on regtest); the new height."""
        while self.segwit_status() != "active":
            self.generate(144 - self.height() % 144, address)
        return self.height()

    def wait_for_height(self, height: int, timeout: float = 30.0) -> None:
        wait_until(lambda: True if self.height() >= height else None, timeout,
                   f"bcoin {self.url} to reach height {height}")

    def wait_for_wallet(self, timeout: float = 10.0) -> None:
        """Wait until the wallet has caught up with the chain tip (it follows ~20 ms behind);
        ``getwalletheight`` is a wallet RPC method the launcher adds."""
        def probe() -> bool | None:
            tip = self.height()
            return True if int(self.wallet_rpc("getwalletheight")) >= tip else None
        wait_until(probe, timeout, f"bcoin wallet on {self.wallet_url} to reach the tip")


# --------------------------------------------------------------------------------------------------
# two peered nodes
# --------------------------------------------------------------------------------------------------


def start_pair(base_dir: Path, memory: bool = False, api_key: str = DEFAULT_API_KEY,
               timeout: float = 60.0) -> tuple[BcoinNode, BcoinNode]:
    """Two nodes that peer only with each other (``base_dir/a``, ``base_dir/b``), both started.
    A single node is enough for getblocktemplate on regtest; a pair shows block propagation."""
    port_a, port_b = free_port(), free_port()
    a = BcoinNode(base_dir / "a", p2p_port=port_a, api_key=api_key, peers=[port_b], memory=memory)
    b = BcoinNode(base_dir / "b", p2p_port=port_b, api_key=api_key, peers=[port_a], memory=memory)
    a.start(timeout)
    try:
        b.start(timeout)
        wait_until(lambda: True if a.rpc("getconnectioncount") >= 1 and b.rpc("getconnectioncount") >= 1
                   else None, timeout, "the two bcoin nodes to connect")
    except BaseException:
        b.stop()
        a.stop()
        raise
    return a, b


@contextmanager
def running_node(datadir: Path, **kwargs: Any) -> Iterator[BcoinNode]:
    """``with running_node(path) as node:`` — start, yield, always stop."""
    node = BcoinNode(datadir, **kwargs)
    try:
        node.start()
        yield node
    finally:
        node.stop()


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def node_cli(name: str, version: str, node_modules: Path, install_node: Callable[..., bool],
             install_error: type[Exception], node_class: Callable[[Path], BcoinNode],
             argv: Sequence[str] | None = None) -> int:
    """``python -m stratum_pool.devnet.NAME install [--force] | run DATADIR`` for an npm-installed node."""
    args = list(sys.argv[1:] if argv is None else argv)
    usage = f"usage: python -m stratum_pool.devnet.{name} install [--force] | run DATADIR"
    if not args or args[0] in ("-h", "--help"):
        print(usage)
        return 0 if args else 2
    if args[0] == "install":
        started = time.monotonic()
        try:
            ran = install_node(force="--force" in args[1:])
        except install_error as exc:
            print(f"{name} install: {exc}", file=sys.stderr)
            return 1
        if ran:
            print(f"{name} {version} installed in {node_modules} ({time.monotonic() - started:.0f}s)")
        else:
            print(f"{name} {version} already installed in {node_modules}")
        return 0
    if args[0] == "run" and len(args) == 2:
        node = node_class(Path(args[1]))
        with node:
            print(f"{name} regtest: rpc {node.url} wallet {node.wallet_url} p2p {node.p2p_address}"
                  f" user {node.rpc_user!r} password {node.rpc_password!r}; Ctrl-C stops", flush=True)
            try:
                while node.running:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        return 0
    print(usage, file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    return node_cli("bcoin", BCOIN_VERSION, NODE_MODULES, install, BcoinInstallError, BcoinNode, argv)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
