"""The dashboard renders the seeded miner in a real browser (headless Chromium against a real TCP port)."""

from __future__ import annotations

import asyncio
import html
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from api_seed import ALICE, NOW_EPOCH, POOLS, seed
from test_api_memory import MEMORY

from stratum_pool.api import RateLimitSettings, create_app, start_api_server
from stratum_pool.api.http import HTTPServer

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / ".run" / "dashboard"
BROWSER_TIMEOUT_SECONDS = 90


def chromium() -> str:
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        pytest.fail("chromium is not installed (apt-get install chromium); the dashboard test needs a real browser")
    return path


async def browse(url: str, profile: Path, *action: str) -> str:
    """Run headless Chromium on ``url`` with ``action`` (--dump-dom, --screenshot=...); returns its stdout."""
    profile.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1280,1500", "--virtual-time-budget=5000", *action, url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), BROWSER_TIMEOUT_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


async def serve(dsn: str | None, pools: Sequence[Any] = POOLS) -> tuple[HTTPServer, str]:
    app = create_app(dsn, pools, None, clock=lambda: NOW_EPOCH, rate_limit=RateLimitSettings(enabled=False))
    runner, port = await start_api_server(app, "127.0.0.1", 0)
    return runner, f"http://127.0.0.1:{port}"


def drawn_series(dom: str, index: int = 0) -> dict[str, Any]:
    """What a chart drew (its data-drawn attribute: uPlot's own data and y scale after drawing)."""
    found = re.findall(r'data-drawn="([^"]*)"', dom)
    assert len(found) > index, "no chart was drawn"
    return dict(json.loads(html.unescape(found[index])))


def keep(png: Path, name: str) -> Path:
    """Copy a screenshot where a person can look at it after the run."""
    assert png.exists() and png.stat().st_size > 10_000, "the screenshot is missing or blank"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / name
    shutil.copyfile(png, target)
    print(f"dashboard screenshot: {target}")
    return target


async def test_miner_page_shows_workers_and_balance(pg_dsn: str, tmp_path: Path) -> None:
    seed(pg_dsn)
    runner, base = await serve(pg_dsn)
    try:
        url = f"{base}/#/miner/{ALICE}"
        dom = await browse(url, tmp_path / "profile-dom", "--dump-dom")
        png = tmp_path / "miner.png"
        await browse(url, tmp_path / "profile-shot", f"--screenshot={png}")
    finally:
        await runner.close()
    assert ALICE in dom
    assert 'class="worker-name">rig1<' in dom
    assert 'class="worker-name">rig2<' in dom
    assert "1.23456789 rBTC" in dom  # balance: 123456789 base units
    assert "20.00000000 rBTC" in dom  # the sent payout
    assert ">429 MH/s<" in dom  # rig1: 60 difficulty in 600 s
    # the chart (uPlot, the last hour per minute by default) draws what the page states: 429 MH/s in each of
    # rig1's last complete minutes (6 difficulty a minute), read back from the chart, not from the screenshot
    drawn = drawn_series(dom)
    assert len(drawn["x"]) == 60 and drawn["x"][-1] == NOW_EPOCH - 60
    assert drawn["y"][-9:] == [6 * 2**32 / 60] * 9
    assert drawn["y"][-10] == 100 * 2**32 / 60  # the busier minute just before
    assert drawn["yMax"] >= max(drawn["y"])
    # lines per worker only when there are several: in the last hour rig1 alone mined (rig2 two hours ago)
    assert drawn["workers"] == {}
    assert "uplot" in dom and 'data-range="30d"' in dom
    assert "<th>Firmware</th>" in dom and ">offline<" in dom  # the database's workers, not connected here
    # the odds at 429 MH/s against regtest's difficulty (2 x 2**32 / 2**32 hashes): a block every 4.7 ns
    assert "Expected time to a block" in dom
    assert ">4.7e-9 s<" in dom and "day ≈ 100%" in dom, dom[dom.find("Expected time"):][:300]
    assert "Could not load" not in dom
    keep(png, "miner.png")


async def test_pages_without_a_database(tmp_path: Path) -> None:
    """No database: the miner page and the pool page from the pool's memory, no 503 anywhere."""
    runner, base = await serve(None, MEMORY)
    try:
        url = f"{base}/#/miner/{ALICE}"
        dom = await browse(url, tmp_path / "profile-dom", "--dump-dom")
        png = tmp_path / "miner-memory.png"
        await browse(url, tmp_path / "profile-shot", f"--screenshot={png}")
        pool_dom = await browse(f"{base}/", tmp_path / "profile-pool", "--dump-dom")
        pool_png = tmp_path / "pool-memory.png"
        await browse(f"{base}/", tmp_path / "profile-pool-shot", f"--screenshot={pool_png}")
    finally:
        await runner.close()
    assert 'class="worker-name">rig1<' in dom and 'class="worker-name">rig2<' in dom
    assert ">4.00 MH/s<" in dom  # rig1's ten minutes, from memory
    assert "4.00 MH/s from 450 shares" in dom  # with the share count behind it
    assert '<td class="firmware">bitaxe/BM1366/v2.4.0</td><td class="num">1.000e-6</td>' in dom  # rig1's device
    memory_drawn = drawn_series(dom)
    assert memory_drawn["y"][-2:] == [4e6, 3e6]  # the chart from memory
    # one line per worker, hover values in the legend
    assert {k: v[-2:] for k, v in memory_drawn["workers"].items()} == {"rig1": [2e6, 1.5e6], "rig2": [2e6, 1.5e6]}
    assert "Expected time to a block" in dom
    assert ">5.0e-7 s<" in dom, dom[dom.find("Expected time"):][:300]  # ND x 2**32 / 4 MH/s
    assert "Could not load" not in dom and "unavailable" not in dom
    assert "bitcoin-regtest" in pool_dom and "Blocks a year per TH/s" in pool_dom
    assert "rejected" in pool_dom and "pending" in pool_dom  # the found blocks kept without a database
    assert "Could not load" not in pool_dom
    keep(png, "miner-memory.png")
    keep(pool_png, "pool-memory.png")


async def test_pool_page_shows_coins_and_blocks(pg_dsn: str, tmp_path: Path) -> None:
    seed(pg_dsn)
    runner, base = await serve(pg_dsn)
    try:
        dom = await browse(f"{base}/", tmp_path / "profile-dom", "--dump-dom")
        png = tmp_path / "pool.png"
        await browse(f"{base}/", tmp_path / "profile-shot", f"--screenshot={png}")
    finally:
        await runner.close()
    assert "bitcoin-regtest" in dom and "litecoin-regtest" in dom
    assert "1.50 GH/s" in dom  # the live hashrate of the bitcoin pool
    assert "orphaned" in dom and "confirmed" in dom  # the found blocks table
    # devices by firmware and the best-difficulty high scores
    assert '<td class="firmware">bitaxe/BM1366/v2.4.0</td><td class="num">1</td>' in dom
    assert dom.count('class="best-row"') == 3 and ">1,234.5<" in dom  # alice, bob; carol on litecoin
    assert dom.count('class="chart"') == 2  # one hashrate chart per coin
    # the bitcoin chart draws the seeded per-minute history: 100 + 30 difficulty ... read back from it
    btc = drawn_series(dom, 0)
    assert btc["y"][-1] == 6 * 2**32 / 60 and btc["y"][-5] == (6 + 30) * 2**32 / 60
    assert "Could not load" not in dom
    keep(png, "pool.png")
