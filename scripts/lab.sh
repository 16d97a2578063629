#!/usr/bin/env bash
# A multi-node berth cluster on this machine, as root: each node a `berth daemon` in a
# network namespace of its own on an underlay bridge (198.18.0.0/15), with its own data
# dir, socket and containerd namespace, all on the host's containerd. One implementation:
# this wraps internal/netlab/labctl, which tests share through package netlab.
#   scripts/lab.sh up N [--managers M] [--name NAME]  start N nodes (again: shows them)
#   scripts/lab.sh status                             the labs on this machine, their nodes
#   scripts/lab.sh env [--name NAME]                  the lab as shell assignments
#   scripts/lab.sh down [--name NAME]                 remove the lab, leaving nothing
# Labs are named ("lab" unless --name says otherwise; the demo's is "demo"), so that
# several run side by side, each on a /24 of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "lab: run as root: the lab makes network namespaces and runs containers" >&2
  exit 1
fi

case "${1:-}" in
up)
  shift
  [ $# -ge 1 ] || { echo "usage: scripts/lab.sh up N [--managers M] [--name NAME]" >&2; exit 2; }
  n=$1
  shift
  scripts/install-test-deps.sh
  make --no-print-directory build
  go build -o bin/labctl ./internal/netlab/labctl
  bin/labctl up --bin bin/berth "$@" "$n"
  ;;
status | env | down)
  go build -o bin/labctl ./internal/netlab/labctl
  bin/labctl "$@"
  ;;
*)
  echo "usage: scripts/lab.sh up N [--managers M] [--name NAME] | status | env [--name NAME] | down [--name NAME]" >&2
  exit 2
  ;;
esac
