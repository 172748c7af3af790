#!/usr/bin/env python3
"""Helpers of live-prometheus.sh: the config it runs Prometheus with, and the checks it makes.

  live_prometheus.py config REPO_ROOT OUT_FILE AGENTS BOOTSTRAPS
      Writes monitoring/prometheus.yml with the Swarm DNS discovery of each bzzz job replaced by
      static targets (comma-separated HOST:PORT lists; BOOTSTRAPS may be empty), the same jobs,
      relabelling and rule files (made absolute), 1 s scrape and evaluation intervals, no
      Alertmanager and no meta-monitoring jobs.

  live_prometheus.py check REPO_ROOT PROMETHEUS_URL TIMEOUT_S AGENTS BOOTSTRAPS
      Checks through the HTTP API, printing every finding:
        1. every target is scraped and `up` is 1 (waits up to TIMEOUT_S);
        2. bzzz_p2p_connected_peers has one sample per target;
        3. every metric the alert rules query has a series (waits; the memory metrics agreed for
           BZZZHighMemoryUsage are only reported: the limit is absent where there is none);
        4. every rule group has been evaluated, every rule has health "ok" and no lastError;
        5. bzzz:dht_success_rate evaluates (its value, or that it is NaN/empty, is reported);
        6. an agent acts as admin in the live data, and then BZZZNoAdminElected and
           BZZZMultipleAdmins are inactive (skipped with no agent targets);
        7. every dashboard query runs without error (which return no data is reported).
      Exit status 1 if a check failed.
"""

import json
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import lint  # noqa: E402  (metric_names, EXPECTED_FROM_NODE)

BZZZ_JOBS = ("bzzz", "bzzz-bootstrap")
LIVE_SERVICE = "live-test"
BOOTSTRAP_SERVICES = [
    "bzzz-v2_dht-bootstrap-walnut",
    "bzzz-v2_dht-bootstrap-ironwood",
    "bzzz-v2_dht-bootstrap-acacia",
]


def split_targets(arg):
    return [t for t in arg.split(",") if t]


def make_config(root, out_file, agents, bootstraps):
    root = Path(root).resolve()
    config_path = root / "monitoring/prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["scrape_timeout"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config.pop("alerting", None)
    config["rule_files"] = [str((config_path.parent / f).resolve()) for f in config["rule_files"]]
    targets = {"bzzz": agents, "bzzz-bootstrap": bootstraps}
    jobs = []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name not in BZZZ_JOBS:
            continue  # meta-monitoring of the Swarm stack; nothing to scrape here
        job.pop("dns_sd_configs", None)
        if name == "bzzz-bootstrap" and len(targets[name]) == len(BOOTSTRAP_SERVICES):
            # In the order given: walnut, ironwood, acacia, as the Swarm stack names them, so that
            # BZZZBootstrapNodeMissing sees all three.
            job["static_configs"] = [
                {"targets": [t], "labels": {"service": svc}}
                for t, svc in zip(targets[name], BOOTSTRAP_SERVICES)
            ]
        elif name == "bzzz" and targets[name]:
            job["static_configs"] = [{"targets": targets[name], "labels": {"service": "bzzz-v2_bzzz-agent"}}]
        else:
            job["static_configs"] = (
                [{"targets": targets[name], "labels": {"service": LIVE_SERVICE}}] if targets[name] else []
            )
        jobs.append(job)
    missing = set(BZZZ_JOBS) - {j["job_name"] for j in jobs}
    if missing:
        sys.exit(f"monitoring/prometheus.yml has no scrape job {sorted(missing)}")
    config["scrape_configs"] = jobs
    Path(out_file).write_text(yaml.safe_dump(config, sort_keys=False))


class Api:
    def __init__(self, base):
        self.base = base.rstrip("/")

    def get(self, path, **params):
        url = f"{self.base}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr):
        return self.get("/api/v1/query", query=expr)["result"]


def value(sample):
    return float(sample["value"][1])


def wait_for(what, timeout_s, probe):
    """Calls probe() until it returns (True, detail) or timeout_s passes; returns the last detail."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            ok, detail = probe()
        except (OSError, RuntimeError, ValueError) as e:  # not reachable, or an API error
            ok, detail = False, f"{what}: {e}"
        if ok or time.monotonic() >= deadline:
            return ok, detail
        time.sleep(1)


class Checks:
    def __init__(self):
        self.failed = []

    def result(self, name, ok, detail):
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
        if not ok:
            self.failed.append(name)


def run_checks(root, url, timeout_s, agents, bootstraps):
    api = Api(url)
    checks = Checks()
    expected = {("bzzz", t) for t in agents} | {("bzzz-bootstrap", t) for t in bootstraps}

    # 1. targets up
    def targets_up():
        active = api.get("/api/v1/targets", state="active")["activeTargets"]
        seen = {(t["labels"]["job"], t["labels"]["instance"]): t for t in active}
        bad = []
        for key in sorted(expected):
            t = seen.get(key)
            if t is None:
                bad.append(f"{key[1]} not a target")
            elif t["health"] != "up":
                bad.append(f"{key[1]} {t['health']} {t.get('lastError', '')}".strip())
        if bad:
            return False, "; ".join(bad)
        ups = api.query('up{job=~"bzzz|bzzz-bootstrap"}')
        got = {(s["metric"]["job"], s["metric"]["instance"]): value(s) for s in ups}
        if set(got) != expected or any(v != 1 for v in got.values()):
            return False, f"up = {got}"
        return True, ", ".join(f"{i} ({j})" for j, i in sorted(got)) + " all up = 1"

    ok, detail = wait_for("targets up", timeout_s, targets_up)
    checks.result("up == 1 for every target", ok, detail)
    if not ok:
        return checks

    # 2. peers per target
    peers = api.query("bzzz_p2p_connected_peers")
    got = {(s["metric"]["job"], s["metric"]["instance"]): value(s) for s in peers}
    checks.result(
        "bzzz_p2p_connected_peers has a sample per target",
        set(got) == expected,
        ", ".join(f"{i}={v:g}" for (j, i), v in sorted(got.items()))
        + ("" if set(got) == expected else f" (missing: {sorted(expected - set(got))})"),
    )

    # 3. metrics the rules query
    rules_doc = yaml.safe_load((Path(root) / lint.RULES).read_text())
    rules = [r for g in rules_doc["groups"] for r in g["rules"]]
    wanted = set()
    for r in rules:
        wanted |= {m for m in lint.metric_names(r["expr"]) if ":" not in m}

    def metrics_present():
        missing = sorted(m for m in wanted - lint.EXPECTED_FROM_NODE if not api.query(f"count({m})"))
        return not missing, missing

    ok, missing = wait_for("metrics", timeout_s, metrics_present)
    checks.result(
        "every metric the rules query has a series",
        ok,
        f"{len(wanted)} metrics" + (f", missing: {', '.join(missing)}" if missing else ""),
    )
    for m in sorted(lint.EXPECTED_FROM_NODE & wanted):
        n = api.query(f"count({m})")
        print(f"info  {m}: {int(value(n[0])) if n else 0} series"
              + ("" if n else " (not exported here: BZZZHighMemoryUsage cannot fire for these nodes)"))

    # 4. rule groups healthy
    def rules_healthy():
        groups = api.get("/api/v1/rules")["groups"]
        problems, count = [], 0
        for g in groups:
            if g.get("lastEvaluation", "").startswith("0001-"):
                problems.append(f"group {g['name']} not evaluated yet")
            for r in g["rules"]:
                count += 1
                if r.get("health") != "ok" or r.get("lastError"):
                    problems.append(f"{r['name']}: health {r.get('health')} {r.get('lastError', '')}".strip())
        if not groups:
            problems.append("no rule groups loaded")
        return not problems, (problems or [f"{len(groups)} groups, {count} rules, all health ok"])

    ok, detail = wait_for("rules", min(timeout_s, 30), rules_healthy)
    checks.result("every rule evaluates with health ok", ok, "; ".join(detail))

    # 5. the recording rule
    def success_rate():
        res = api.query("bzzz:dht_success_rate")
        return bool(res) and not any(math.isnan(value(s)) for s in res), res

    _, res = wait_for("dht success rate", min(timeout_s, 20), success_rate)
    if not res:
        shown = "no sample yet (needs two scrapes of the DHT counters)"
    else:
        shown = ", ".join(
            f"job {s['metric'].get('job')}: "
            + ("NaN (no DHT operation in the window)" if math.isnan(value(s)) else f"{value(s):.4f}")
            for s in res
        )
    direct = api.query(next(r["expr"] for r in rules if r.get("record") == "bzzz:dht_success_rate"))
    checks.result(
        "bzzz:dht_success_rate evaluates",
        True,
        shown + f" (its expression queried directly: {len(direct)} series)",
    )

    # 6. admin: the rules see the live election
    if agents:
        def one_admin():
            res = api.query('bzzz_admin_is_self{job="bzzz"} == 1')
            return len(res) == 1, [s["metric"]["instance"] for s in res]

        ok, admins = wait_for("admin", timeout_s, one_admin)
        checks.result("exactly one agent reports bzzz_admin_is_self = 1", ok, f"admins: {admins or 'none'}")
        if ok:
            time.sleep(3)  # a few evaluations after the admin was seen
            active = api.get("/api/v1/alerts")["alerts"]
            bad = [a for a in active if a["labels"]["alertname"] in ("BZZZNoAdminElected", "BZZZMultipleAdmins")]
            checks.result(
                "BZZZNoAdminElected and BZZZMultipleAdmins inactive with one admin",
                not bad,
                "inactive" if not bad else ", ".join(f"{a['labels']['alertname']} {a['state']}" for a in bad),
            )
    else:
        print("skip  admin checks: no agent targets")

    # 7. dashboard queries
    dash = json.loads((Path(root) / lint.DASHBOARD).read_text())
    errors, empty, total = [], [], 0
    for p in dash["panels"]:
        for t in p.get("targets", []):
            expr = t["expr"].replace("$__rate_interval", "1m").replace("$job", ".*").replace("$instance", ".*")
            total += 1
            try:
                if not api.query(expr):
                    empty.append(p["title"])
            except RuntimeError as e:
                errors.append(f"{p['title']}: {e}")
    checks.result("every dashboard query runs", not errors, f"{total} queries" + (f"; errors: {errors}" if errors else ""))
    if empty:
        print(f"info  dashboard panels with a query that has no data yet: {', '.join(sorted(set(empty)))}")

    # Alerts the live data already trigger (most need minutes of `for` before they fire).
    active = api.get("/api/v1/alerts")["alerts"]
    if active:
        print("info  alerts pending or firing now: " + ", ".join(
            f"{a['labels']['alertname']}{{{a['labels'].get('instance') or a['labels'].get('job') or a['labels'].get('service', '')}}} {a['state']}"
            for a in active))
    else:
        print("info  no alert pending or firing")
    return checks


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "config" and len(sys.argv) == 6:
        make_config(sys.argv[2], sys.argv[3], split_targets(sys.argv[4]), split_targets(sys.argv[5]))
    elif cmd == "check" and len(sys.argv) == 7:
        checks = run_checks(sys.argv[2], sys.argv[3], float(sys.argv[4]),
                            split_targets(sys.argv[5]), split_targets(sys.argv[6]))
        print()
        if checks.failed:
            print(f"live Prometheus checks FAILED ({len(checks.failed)}): " + "; ".join(checks.failed))
            sys.exit(1)
        print("live Prometheus checks passed")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
