"""The shipped systemd units pass `systemd-analyze verify` (with the paths pointed at this checkout)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "systemd"


def test_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine")
    venv_bin = str(Path(sys.executable).parent)
    names = sorted(p.name for p in UNITS.iterdir())
    assert names == ["stratum-pool-payout.service", "stratum-pool-payout.timer", "stratum-pool.service"]
    for name in names:
        text = (UNITS / name).read_text().replace("/opt/stratum-pool/.venv/bin", venv_bin)
        (tmp_path / name).write_text(text)
    result = subprocess.run([analyze, "verify", "--man=no", *names], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_pool_unit_is_hardened_and_restarts() -> None:
    text = (UNITS / "stratum-pool.service").read_text()
    for line in ("Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                 "User=stratum-pool", "LimitNOFILE=1048576", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in text
