"""A private PostgreSQL server for `make run` when no database is configured.

It lives in a temporary folder, listens on 127.0.0.1 on a free port with trust authentication, and is
gone when stopped. PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user (which
Debian's postgresql package creates).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from stratum_pool.devnet.common import free_port


def find_pg_bindir() -> Path | None:
    """Where initdb and pg_ctl are (Debian keeps them out of PATH, per major version)."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


class PrivatePostgres:
    def __init__(self, port: int | None = None, user: str = "postgres") -> None:
        self.port = port or free_port()
        self.bindir = find_pg_bindir()
        self.user = user
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.datadir: Path | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", self.user, "--", *argv]
        return argv

    def start(self) -> None:
        if self.bindir is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (or set a database dsn)")
        self._tmp = tempfile.TemporaryDirectory(prefix="stratum-pool-pg-")
        root = Path(self._tmp.name)
        self.datadir = root / "data"
        if os.geteuid() == 0:
            owner = pwd.getpwnam(self.user)
            os.chown(root, owner.pw_uid, owner.pw_gid)
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        subprocess.run(self._as_owner([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user,
                                       "--auth=trust", "--no-sync", "-E", "UTF8"]),
                       check=True, capture_output=True, timeout=120)
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off"
        subprocess.run(self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", options,
                                       "-l", str(root / "server.log"), "-w", "start"]),
                       check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        if self.datadir is not None and self.bindir is not None:
            subprocess.run(self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast",
                                           "-w", "stop"]), capture_output=True, timeout=60)
            self.datadir = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
