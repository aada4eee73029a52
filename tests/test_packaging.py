"""Installing like a package: the sdist builds the native extension from its own files into a fresh virtual
environment, which then answers ``--version`` and ``check-config`` on a shipped config and holds no test tool.

This is the slow path an operator or a packager takes (``python -m build --sdist``, then ``pip install`` of the
archive, which compiles native/), so it is one test.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]


def run(*cmd: str | Path, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{cmd}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def test_sdist_installs_into_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--sdist", "--outdir", dist, ROOT)
    (archive,) = dist.glob("stratum_pool-*.tar.gz")
    assert archive.name == f"stratum_pool-{VERSION}.tar.gz"
    with tarfile.open(archive) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    # what setup.py compiles, what _native.pyx includes, and what an operator needs beside the code
    needed = {"LICENSE", "setup.py", "native/_native.pyx", "native/sharecore.pxi", "native/shareset.pxi",
              "native/v1submit.pxi", "native/share.h", "native/sha256.h", "native/scrypt.h",
              "native/sha256.c", "native/sha256_shani.c", "native/sha256_armv8.c", "native/scrypt.c",
              "native/share.c", "stratum_pool/store/migrations/001_initial.sql", "configs/bitcoin-mainnet.toml",
              "systemd/stratum-pool.service", "monitoring/grafana-dashboard.json", "monitoring/alerts.yml"}
    assert needed <= names, sorted(needed - names)
    assert not any(n.endswith(".so") or "node_modules" in n for n in names)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    bin_ = venv / "bin"
    # from the archive alone, in a directory that holds no source tree
    run(bin_ / "python", "-m", "pip", "install", "-q", archive, cwd=tmp_path)

    version = run(bin_ / "stratum-pool", "--version", cwd=tmp_path)
    assert version.stdout.strip() == f"stratum-pool {VERSION}"
    checked = run(bin_ / "stratum-pool", "check-config", "--config", ROOT / "configs" / "bitcoin-mainnet.toml",
                  cwd=tmp_path)
    assert checked.stdout.startswith("ok: bitcoin-mainnet (sha256d) mode=solo"), checked.stdout
    # the compiled share core is the one in the fresh venv, not this checkout's
    where = run(bin_ / "python", "-c", "import stratum_pool._native as n; print(n.__file__, n.sha_backend())",
                cwd=tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout
    # runtime dependencies only: no test tool came with it
    listed = run(bin_ / "python", "-m", "pip", "list", "--format=freeze", cwd=tmp_path).stdout.lower()
    installed = {line.split("==")[0] for line in listed.splitlines()}
    assert "psycopg" in installed and "structlog" in installed
    assert not installed & {"pytest", "mypy", "ruff", "atheris", "hypothesis", "import-linter", "cython",
                            "aiohttp"}, installed


def test_version_flag_of_this_checkout() -> None:
    result = run(sys.executable, "-m", "stratum_pool.cli", "--version")
    assert result.stdout.strip() == f"stratum-pool {VERSION}"


def test_make_install_is_a_production_venv(tmp_path: Path) -> None:
    """`make install` (the README's systemd section): the package, not editable, and no test tool."""
    venv = tmp_path / "venv"
    run("make", "-s", "install", f"VENV={venv}", cwd=ROOT)
    bin_ = venv / "bin"
    assert run(bin_ / "stratum-pool", "--version", cwd=tmp_path).stdout.strip() == f"stratum-pool {VERSION}"
    where = run(bin_ / "python", "-c", "import stratum_pool; print(stratum_pool.__file__)", cwd=tmp_path).stdout
    assert where.startswith(str(venv)), where  # a copy in the venv, not this checkout (editable)
    listed = run(bin_ / "python", "-m", "pip", "list", "--format=freeze", cwd=tmp_path).stdout.lower()
    installed = {line.split("==")[0] for line in listed.splitlines()}
    assert "psycopg-pool" in installed
    assert not installed & {"pytest", "mypy", "ruff", "atheris", "hypothesis", "import-linter", "build",
                             "aiohttp"}, installed
