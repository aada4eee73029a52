"""Logs are JSON lines (journald) when asked, including what the standard library logs."""

from __future__ import annotations

import io
import logging

import orjson
import structlog

from stratum_pool.logs import configure_logging


def test_json_logs_from_structlog_and_stdlib() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    try:
        structlog.get_logger("t").info("block_found", height=5, hash="00ab")
        logging.getLogger("stratum_pool.daemon.rpc").warning("daemon %s marked down", "node1")
        structlog.get_logger("t").debug("hidden")
        lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    assert lines[0]["event"] == "block_found" and lines[0]["height"] == 5 and lines[0]["level"] == "info"
    assert "timestamp" in lines[0]
    assert lines[1]["event"] == "daemon node1 marked down" and lines[1]["level"] == "warning"
    assert lines[1]["logger"] == "stratum_pool.daemon.rpc"
    assert len(lines) == 2
