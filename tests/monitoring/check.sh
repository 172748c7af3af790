#!/usr/bin/env bash
# Offline checks of monitoring/: Prometheus config, alert rules and their unit tests, the
# Alertmanager example, the Swarm stack file, the dashboard. Needs promtool (Debian package
# `prometheus`) and python3 with PyYAML; amtool (`prometheus-alertmanager`) and the docker CLI are
# used when present. Runs every check, prints what failed, exits 1 if anything did.
#
#   tests/monitoring/check.sh
#
# The live check against a running mesh is tests/monitoring/live-prometheus.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

failed=()
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# step NAME COMMAND...: runs the command, records NAME if it fails.
step() {
  local name="$1"
  shift
  echo "== $name"
  if "$@"; then
    echo "   ok"
  else
    echo "   FAILED: $name"
    failed+=("$name")
  fi
}

if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool not found: apt-get install -y --no-install-recommends prometheus" >&2
  exit 1
fi

# `check config` also loads the rule files the config names (resolved relative to the config).
step "promtool check config monitoring/prometheus.yml" \
  promtool check config monitoring/prometheus.yml
step "promtool check rules monitoring/rules/bzzz-alerts.yml" \
  promtool check rules monitoring/rules/bzzz-alerts.yml
step "promtool test rules monitoring/rules/bzzz-alerts.test.yml" \
  promtool test rules monitoring/rules/bzzz-alerts.test.yml

if command -v amtool >/dev/null 2>&1; then
  step "amtool check-config monitoring/alertmanager.yml" \
    amtool check-config monitoring/alertmanager.yml
  # routes_to LABELS... EXPECTED: where the example route sends an alert with these labels.
  routes_to() {
    local want="${*: -1}" got
    # (amtool warns that --config.file overrides --alertmanager.url: expected here, dropped.)
    got="$(amtool config routes test --config.file=monitoring/alertmanager.yml "${@:1:$#-1}" \
      2> >(grep -v 'overrides the --alertmanager.url' >&2))"
    [[ "$got" == "$want" ]] || { echo "   routed to '$got', want '$want'"; return 1; }
  }
  step "alertmanager routes critical to bzzz-critical" \
    routes_to alertname=BZZZNoAdminElected severity=critical bzzz-critical
  step "alertmanager routes warning to bzzz-warning" \
    routes_to alertname=BZZZInsufficientPeers severity=warning bzzz-warning
else
  echo "== amtool not found (apt-get install prometheus-alertmanager): alertmanager.yml NOT checked"
fi

if command -v docker >/dev/null 2>&1 && docker stack config --help >/dev/null 2>&1; then
  step "docker stack config -c monitoring/docker-stack.monitoring.yml" \
    bash -c 'docker stack config -c monitoring/docker-stack.monitoring.yml >/dev/null'
else
  echo "== docker stack config not available: docker-stack.monitoring.yml NOT checked"
fi

# Alerts' runbook links, severities and tests; metric names against docs/metrics.md; the
# dashboard's panels and queries (written out as rules so promtool parses every one).
step "lint: alerts, tests, metric names, runbook sections, dashboard" \
  python3 tests/monitoring/lint.py . "$tmp/dashboard-queries.yml"
if [[ -s "$tmp/dashboard-queries.yml" ]]; then
  step "promtool parses every dashboard query" \
    promtool check rules "$tmp/dashboard-queries.yml"
fi

echo
if ((${#failed[@]})); then
  echo "monitoring checks FAILED (${#failed[@]}):"
  printf '  - %s\n' "${failed[@]}"
  exit 1
fi
echo "monitoring checks passed"
