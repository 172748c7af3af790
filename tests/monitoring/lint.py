#!/usr/bin/env python3
"""Static checks of monitoring/ that promtool and amtool do not make. Run by check.sh.

Usage: lint.py REPO_ROOT DASHBOARD_RULES_OUT

Checks, each failure printed as `FAIL: ...`:
  * every alert has `for`, a `severity` label of critical or warning, `summary` and `description`
    annotations, and `runbook_url` = `docs/runbook.md#<alert name in lower case>`;
  * every alert is made to fire (non-empty exp_alerts) and, at a later time, to clear
    (`exp_alerts: []`) in rules/bzzz-alerts.test.yml, and the recording rules are tested;
  * every metric the rules or the dashboard query is in docs/metrics.md (or is one of the few
    listed below that do not come from bzzz's own registry);
  * docs/runbook.md, when it exists, has a `### <AlertName>` section per alert;
  * the dashboard JSON parses, has the datasource and instance variables, and every panel that is
    not a row has at least one query.
It also writes every dashboard query, with the Grafana variables replaced by plain values, as a
recording rule into DASHBOARD_RULES_OUT, so that check.sh can have promtool parse them.
Exit status 1 if anything failed.
"""

import json
import re
import sys
from pathlib import Path

try:
    import yaml
except ImportError:
    print("FAIL: python3 has no PyYAML (Debian: apt-get install python3-yaml)")
    sys.exit(1)

RULES = "monitoring/rules/bzzz-alerts.yml"
TESTS = "monitoring/rules/bzzz-alerts.test.yml"
DASHBOARD = "monitoring/grafana/bzzz-dashboard.json"
METRICS_DOC = "docs/metrics.md"
RUNBOOK = "docs/runbook.md"

# Queried but never in docs/metrics.md: Prometheus's own `up`.
NOT_IN_METRICS_DOC = {"up"}
# Queried by BZZZHighMemoryUsage and the memory panels, agreed with the node but possibly not
# exported (and documented) yet: a note, not a failure, while docs/metrics.md lacks them.
EXPECTED_FROM_NODE = {"process_resident_memory_bytes", "bzzz_memory_limit_bytes"}

failures = []
notes = set()
recorded = set()  # names of the recording rules in RULES


def fail(msg):
    if msg not in failures:
        failures.append(msg)
        print(f"FAIL: {msg}")


def note(msg):
    if msg not in notes:
        notes.add(msg)
        print(f"note: {msg}")


# PromQL words that look like metric names but are not.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "rate", "irate", "increase", "delta", "idelta",
    "deriv", "absent", "absent_over_time", "histogram_quantile", "label_replace", "label_join",
    "vector", "scalar", "time", "abs", "ceil", "floor", "round", "clamp", "clamp_min",
    "clamp_max", "sort", "sort_desc", "changes", "resets", "inf", "nan", "le", "min_over_time",
    "max_over_time", "avg_over_time", "sum_over_time", "count_over_time", "last_over_time",
    "predict_linear", "exp", "ln", "log2", "log10", "sqrt",
}


def metric_names(expr):
    """Metric names an expression selects (bare identifiers before `{`, `[`, or an operator)."""
    # Drop label matchers, strings and durations first so their contents are not taken as names.
    stripped = re.sub(r'"[^"]*"', '""', expr)
    stripped = re.sub(r"\{[^}]*\}", "{}", stripped)
    stripped = re.sub(r"\[[^\]]*\]", "[]", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped)
    names = set()
    for m in re.finditer(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()", stripped):
        word = m.group(1)
        if word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def documented_metrics(root):
    text = (root / METRICS_DOC).read_text()
    names = set(re.findall(r"`(bzzz_[a-z0-9_]+|process_[a-z0-9_]+)`", text))
    # Histograms are documented by their base name; queries use the _bucket/_sum/_count series.
    for n in list(names):
        names |= {n + "_bucket", n + "_sum", n + "_count"}
    return names


def check_rules(root, documented):
    rules_doc = yaml.safe_load((root / RULES).read_text())
    alerts, records = [], []
    for group in rules_doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts.append(rule)
            else:
                records.append(rule)
    for rule in alerts:
        name = rule["alert"]
        if "for" not in rule:
            fail(f"{name}: no `for:` duration")
        severity = rule.get("labels", {}).get("severity")
        if severity not in ("critical", "warning"):
            fail(f"{name}: severity label is {severity!r}, want critical or warning")
        ann = rule.get("annotations", {})
        for key in ("summary", "description"):
            if not ann.get(key):
                fail(f"{name}: no {key} annotation")
        want = f"docs/runbook.md#{name.lower()}"
        if ann.get("runbook_url") != want:
            fail(f"{name}: runbook_url is {ann.get('runbook_url')!r}, want {want!r}")
    recorded.update(rule["record"] for rule in records)
    for rule in alerts + records:
        for metric in metric_names(rule["expr"]):
            check_metric(metric, rule.get("alert") or rule.get("record"), documented)
    return alerts, records


def check_metric(metric, where, documented):
    if metric in documented or metric in NOT_IN_METRICS_DOC or metric in recorded:
        return
    if ":" in metric:
        fail(f"{where}: queries {metric}, which no recording rule in {RULES} defines")
        return
    if metric in EXPECTED_FROM_NODE:
        note(f"{metric} is not in {METRICS_DOC} yet (the node is to export it)")
        return
    fail(f"{where}: queries {metric}, which {METRICS_DOC} does not list")


def check_tests(root, alerts, records):
    tests_doc = yaml.safe_load((root / TESTS).read_text())
    fired, cleared_after = {}, {}
    tested_exprs = []

    def minutes(t):
        m = re.fullmatch(r"(\d+)([smh])", str(t))
        if not m:
            return None
        return int(m.group(1)) * {"s": 1 / 60, "m": 1, "h": 60}[m.group(2)]

    for test in tests_doc["tests"]:
        for case in test.get("alert_rule_test", []):
            name, t = case["alertname"], minutes(case["eval_time"])
            if case.get("exp_alerts"):
                fired.setdefault(name, []).append(t)
            else:
                cleared_after.setdefault(name, []).append(t)
        for case in test.get("promql_expr_test", []):
            tested_exprs.append(case["expr"])
    for rule in alerts:
        name = rule["alert"]
        if name not in fired:
            fail(f"{name}: no test makes it fire")
            continue
        first = min(fired[name])
        if not any(t > first for t in cleared_after.get(name, [])):
            fail(f"{name}: no test shows it clear (exp_alerts: []) after it fired")
    for rule in records:
        if not any(rule["record"] in e for e in tested_exprs):
            fail(f"recording rule {rule['record']}: no promql_expr_test checks its value")


def check_runbook(root, alerts):
    path = root / RUNBOOK
    if not path.exists():
        note(f"{RUNBOOK} does not exist yet: runbook sections not checked")
        return
    headings = set(re.findall(r"^###\s+(\S+)\s*$", path.read_text(), re.M))
    for rule in alerts:
        if rule["alert"] not in headings:
            fail(f"{rule['alert']}: {RUNBOOK} has no `### {rule['alert']}` section")


def check_dashboard(root, documented, out_path):
    try:
        dash = json.loads((root / DASHBOARD).read_text())
    except (OSError, json.JSONDecodeError) as e:
        fail(f"{DASHBOARD} does not parse: {e}")
        return
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    for var in ("datasource", "instance"):
        if var not in variables:
            fail(f"{DASHBOARD}: no `{var}` template variable")
    panels = []
    for p in dash.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []))  # panels inside collapsed rows
    rules = []
    for p in panels:
        if p.get("type") == "row":
            continue
        exprs = [t.get("expr", "").strip() for t in p.get("targets", [])]
        if not exprs or not all(exprs):
            fail(f"{DASHBOARD}: panel {p.get('title')!r} has a target without a query")
            continue
        for i, expr in enumerate(exprs):
            concrete = (
                expr.replace("$__rate_interval", "1m")
                .replace("$job", ".*")
                .replace("$instance", ".*")
            )
            if "$" in concrete:
                fail(f"{DASHBOARD}: panel {p.get('title')!r} uses an unknown variable: {expr}")
            for metric in metric_names(concrete):
                check_metric(metric, f"panel {p.get('title')!r}", documented)
            rules.append({"record": f"dashboard:panel_{p.get('id')}_{i}", "expr": concrete})
    Path(out_path).write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    print(f"dashboard: {len([p for p in panels if p.get('type') != 'row'])} panels, {len(rules)} queries")


def main():
    root, out_path = Path(sys.argv[1]), sys.argv[2]
    documented = documented_metrics(root)
    alerts, records = check_rules(root, documented)
    print(f"rules: {len(alerts)} alerts, {len(records)} recording rules")
    check_tests(root, alerts, records)
    check_runbook(root, alerts)
    check_dashboard(root, documented, out_path)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
