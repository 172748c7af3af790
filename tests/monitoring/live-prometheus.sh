#!/usr/bin/env bash
# The real-Prometheus check: scrape a running mesh with monitoring/prometheus.yml and its alert
# rules, and check through Prometheus's HTTP API that the targets are up, that
# bzzz_p2p_connected_peers and every metric the rules need are there, that every rule evaluates
# with health "ok", what bzzz:dht_success_rate says, that the rules see the live admin, and that
# every dashboard query runs.
#
#   tests/monitoring/live-prometheus.sh [--bootstrap HOST:PORT]... [--timeout S] HOST:PORT...
#
# Each HOST:PORT is a node's health listener (it serves /metrics): agents go in job `bzzz`,
# --bootstrap ones in job `bzzz-bootstrap`. For example, against `bzzz dev --nodes 3` (health
# listeners on 8081, 8083, 8085):
#
#   tests/monitoring/live-prometheus.sh 127.0.0.1:8081 127.0.0.1:8083 127.0.0.1:8085
#
# Runs the `prometheus` binary (Debian package `prometheus`, installed with apt-get if missing and
# possible; its systemd unit plays no part) on a free loopback port with a temporary config and
# storage, stops it on exit, prints a summary and exits 1 if a check failed. Every wait is bounded
# by --timeout (default 60 s).
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 2
}

agents=()
bootstraps=()
timeout_s=60
while (($#)); do
  case "$1" in
    --bootstrap) [[ $# -ge 2 ]] || usage; bootstraps+=("$2"); shift 2 ;;
    --timeout) [[ $# -ge 2 ]] || usage; timeout_s="$2"; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) agents+=("$1"); shift ;;
  esac
done
((${#agents[@]} + ${#bootstraps[@]})) || usage
for t in "${agents[@]}" "${bootstraps[@]}"; do
  [[ "$t" =~ ^[^:/]+:[0-9]+$ ]] || { echo "not HOST:PORT: $t" >&2; exit 2; }
done

if ! command -v prometheus >/dev/null 2>&1; then
  echo "== prometheus not found: installing the Debian package"
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
  command -v prometheus >/dev/null 2>&1 || { echo "FAIL: no prometheus binary (apt-get install prometheus)" >&2; exit 1; }
fi
python3 -c 'import yaml' 2>/dev/null || { echo "FAIL: python3 has no PyYAML (apt-get install python3-yaml)" >&2; exit 1; }

tmp="$(mktemp -d)"
prom_pid=""
cleanup() {
  if [[ -n "$prom_pid" ]] && kill -0 "$prom_pid" 2>/dev/null; then
    kill "$prom_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$prom_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$prom_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

join() { local IFS=,; echo "$*"; }
agents_csv="$(join "${agents[@]+"${agents[@]}"}")"
boots_csv="$(join "${bootstraps[@]+"${bootstraps[@]}"}")"

python3 tests/monitoring/live_prometheus.py config . "$tmp/prometheus.yml" "$agents_csv" "$boots_csv"
promtool check config "$tmp/prometheus.yml" >/dev/null

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
echo "== prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') on $url"
echo "   jobs: bzzz=[${agents_csv}] bzzz-bootstrap=[${boots_csv}]"
prometheus \
  --config.file="$tmp/prometheus.yml" \
  --storage.tsdb.path="$tmp/data" \
  --web.listen-address="127.0.0.1:$port" \
  --log.level=warn \
  >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!

ready=""
for _ in $(seq $((timeout_s * 2))); do
  if ! kill -0 "$prom_pid" 2>/dev/null; then break; fi
  if curl -fsS "$url/-/ready" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.5
done
if [[ -z "$ready" ]]; then
  echo "FAIL: prometheus did not become ready within ${timeout_s}s; its log:"
  cat "$tmp/prometheus.log"
  exit 1
fi

status=0
python3 tests/monitoring/live_prometheus.py check . "$url" "$timeout_s" "$agents_csv" "$boots_csv" || status=$?
if ((status)); then
  echo "prometheus log (warnings and errors):"
  sed 's/^/  /' "$tmp/prometheus.log"
fi
exit "$status"
