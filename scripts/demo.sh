#!/usr/bin/env bash
# The README's main job, on a fresh Debian machine as root: a one-node berth cluster on
# containerd running the examples that need no registry. Safe to run again: what is
# there already is kept (the daemon, the cluster, the image, the stacks are redeployed
# and converge to the same tasks). `make demo-clean` (this script with "clean") undoes it.
set -euo pipefail
cd "$(dirname "$0")/.."

BERTH=${BERTH:-bin/berth}
DATA_DIR=${BERTH_DEMO_DATA_DIR:-/var/lib/berth-demo}
SOCK=${BERTH_DEMO_SOCKET:-/run/berth-demo/berth.sock}
PORT=${BERTH_DEMO_PORT:-4270}
LOG=${BERTH_DEMO_LOG:-/var/log/berth-demo.log}
PIDFILE=$DATA_DIR.pid
IMAGE=berth.demo/busybox:1
# The stacks of examples/ whose images the demo builds; the others name registry images.
STACKS=(reconcile notes)

berth() { "$BERTH" --host "unix://$SOCK" "$@"; }

daemon_up() { [ -S "$SOCK" ] && berth info >/dev/null 2>&1; }

clean() {
  if daemon_up; then
    for s in "${STACKS[@]}"; do berth stack rm "$s" >/dev/null 2>&1 || true; done
    berth leave --force >/dev/null 2>&1 || true
  fi
  if [ -f "$PIDFILE" ]; then
    kill "$(cat "$PIDFILE")" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.1; done
    rm -f "$PIDFILE"
  fi
  if command -v ctr >/dev/null; then
    ctr -n berth images rm --sync "$IMAGE" >/dev/null 2>&1 || true
    # Only when nothing else is left in it: other images may have been loaded there.
    ctr namespaces rm berth >/dev/null 2>&1 || true
  fi
  rm -rf "$DATA_DIR" "$(dirname "$SOCK")"
  echo "demo: removed the demo cluster, its data dir ($DATA_DIR) and its image"
}

if [ "${1:-}" = clean ]; then
  clean
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root: berth runs containers through containerd and makes network namespaces" >&2
  exit 1
fi

scripts/install-test-deps.sh
make --no-print-directory build

if ! daemon_up; then
  mkdir -p "$(dirname "$SOCK")"
  echo "demo: starting berth daemon (log: $LOG)"
  setsid "$BERTH" daemon --data-dir "$DATA_DIR" --socket "$SOCK" --listen-addr "127.0.0.1:$PORT" \
    --hostname "$(hostname)" >>"$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 100); do daemon_up && break; sleep 0.1; done
  daemon_up || { echo "demo: berth daemon did not start; the end of $LOG:" >&2; tail -20 "$LOG" >&2; exit 1; }
fi

if berth info | grep -q '^Cluster: *inactive'; then
  berth init --advertise-addr "127.0.0.1:$PORT"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go run ./internal/testimage/mkimage -name "$IMAGE" -o "$tmp/image.tar"
berth image load "$tmp/image.tar"

for s in "${STACKS[@]}"; do
  berth stack deploy -c "examples/$s/compose.yaml" --detach=false --timeout 2m "$s"
done
echo
berth service ls
