"""The monitoring kit (monitoring/): alert rules pass ``promtool check rules`` and their unit tests
(``promtool test rules``, one case firing each alert); the Grafana dashboard is importable JSON whose every
query parses as PromQL; rules and dashboard name only metrics the pool really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from stratum_pool.metrics import PoolMetrics

KIT = Path(__file__).resolve().parent.parent / "monitoring"
ALERTS = KIT / "alerts.yml"
DASHBOARD = KIT / "grafana-dashboard.json"
METRIC = re.compile(r"\b(stratum_pool_[a-z0-9_]+)")
# written by cluster/peers.py into the merged /metrics, not by PoolMetrics
PEER_METRICS = {"stratum_pool_worker_metrics_age_seconds"}


def promtool() -> str:
    path = shutil.which("promtool")
    # `make test` installs it (Debian's prometheus package); a missing one is a broken setup, not a skip
    assert path is not None, "promtool is missing: sudo apt-get install prometheus (make test does it as root)"
    return path


def exported_names() -> set[str]:
    """Every sample name a pool's /metrics can carry."""
    names = set(PEER_METRICS)
    for family in PoolMetrics().registry.collect():
        if family.type == "counter" or isinstance(family, CounterMetricFamily):
            names |= {family.name + "_total", family.name + "_created"}
        elif family.type == "histogram" or isinstance(family, HistogramMetricFamily):
            names |= {family.name + s for s in ("_bucket", "_count", "_sum", "_created")}
        else:
            names.add(family.name)
    return names


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def test_exported_names_are_what_the_registry_says() -> None:
    names = exported_names()
    assert {"stratum_pool_shares_total", "stratum_pool_rpc_seconds_bucket", "stratum_pool_template_age_seconds",
            "stratum_pool_db_load_failures"} <= names
    assert "stratum_pool_shares" not in names


def test_alert_rules_check() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


def test_alert_rules_unit_tests_fire_each_alert() -> None:
    alerts = re.findall(r"^\s*- alert: (\w+)$", ALERTS.read_text(), re.MULTILINE)
    assert len(alerts) == 9 and len(set(alerts)) == 9
    tests = (KIT / "alerts.test.yml").read_text()
    # each alert has a case expecting it to fire (a non-empty exp_alerts after its alertname)
    fired = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels", tests))
    assert fired == set(alerts)
    result = subprocess.run([promtool(), "test", "rules", "alerts.test.yml"], cwd=KIT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests see the thresholds: raise one and its firing case fails."""
    rule = 'stratum_pool_template_age_seconds{job="stratum-pool"}) > 300'
    assert rule in ALERTS.read_text()
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text().replace(rule, rule + "0"))
    shutil.copy(KIT / "alerts.test.yml", tmp_path)
    result = subprocess.run([promtool(), "test", "rules", "alerts.test.yml"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "StratumPoolTemplateTooOld" in result.stdout + result.stderr


def test_rules_and_dashboard_name_only_exported_metrics() -> None:
    names = exported_names()
    used_rules = set(METRIC.findall(ALERTS.read_text()))
    used_dash = set(METRIC.findall(DASHBOARD.read_text()))
    assert used_rules and used_dash
    assert used_rules <= names, sorted(used_rules - names)
    assert used_dash <= names, sorted(used_dash - names)


def panels_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in data["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def test_dashboard_is_importable_with_a_panel_per_metric() -> None:
    data = dashboard()
    assert data["uid"] and data["title"] and isinstance(data["schemaVersion"], int)
    # import asks for the Prometheus data source, and every panel and query uses it
    assert [i["pluginId"] for i in data["__inputs"]] == ["prometheus"]
    panels = panels_of(data)
    assert len({p["id"] for p in panels}) == len(panels)
    for p in panels:
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        assert p["targets"], p["title"]
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])
    # no two panels overlap on the grid
    cells = [(x, y) for p in panels for g in [p["gridPos"]]
             for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])]
    assert len(cells) == len(set(cells))
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for metric in ("stratum_pool_hashrate_hashes_per_second", "stratum_pool_shares_total",
                   "stratum_pool_connections_open", "stratum_pool_blocks_found_total",
                   "stratum_pool_template_age_seconds", "stratum_pool_new_block_to_notify_seconds_bucket",
                   "stratum_pool_rpc_seconds_bucket", "stratum_pool_rpc_errors_total",
                   "stratum_pool_db_queue_records", "stratum_pool_bans_total"):
        assert metric in exprs, metric


def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    """promtool parses each query (Grafana's variables replaced by what Grafana puts there) as a recording rule."""
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for n, p in enumerate(panels_of(dashboard())):
        for t in p["targets"]:
            expr = (t["expr"].replace("$__rate_interval", "1m").replace("$__range", "6h")
                    .replace("$coin", ".*"))
            assert "$" not in expr, expr
            lines += [f"      - record: dashboard:panel{n}:{t['refId']}", f"        expr: {json.dumps(expr)}"]
    rules = tmp_path / "dashboard.yml"
    rules.write_text("\n".join(lines) + "\n")
    result = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_block_results_exported_at_zero() -> None:
    """A rejected block must be an increase the BlockRejected alert sees: the series exists at 0 first."""
    coin = "bitcoin-regtest"
    m = PoolMetrics()
    m.watch_coin(coin)
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for f in m.registry.collect() for s in f.samples}
    assert got[("stratum_pool_blocks_found_total", (("coin", coin), ("result", "rejected")))] == 0
    assert got[("stratum_pool_blocks_found_total", (("coin", coin), ("result", "accepted")))] == 0
