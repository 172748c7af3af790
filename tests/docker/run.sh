#!/usr/bin/env bash
# The Docker tier (.ci/run calls this): build the image, check monitoring/, then run the mesh in
# containers (docker-compose.local.yml, then docker-stack.yml in Swarm mode) through
# tests/docker/tier.py. Skipped, with a notice, when no Docker engine answers.
#
#   tests/docker/run.sh              everything
#   tests/docker/run.sh compose      one deployment only (compose | swarm)
#
# BZZZ_IMAGE_PROFILE=dev builds the image from a debug binary (faster to build); the default is
# the release build operators deploy.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! docker info >/dev/null 2>&1; then
  echo "NOTICE: Docker tier skipped: no Docker engine answers 'docker info'."
  exit 0
fi

echo "== docker tier: build the image"
docker/build-image.sh

echo "== docker tier: monitoring/ checks (promtool, amtool, stack files, dashboard)"
tests/monitoring/check.sh

echo "== docker tier: containers"
python3 tests/docker/tier.py "${1:-all}"
