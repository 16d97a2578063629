#!/usr/bin/env bash
# The README's main job, the whole mission on one machine, as root on a fresh Debian
# machine: a lab of 3 berth nodes (1 manager, 2 workers; scripts/lab.sh), each a daemon
# in a network namespace of its own on the host's containerd; the demo image loaded on
# every node; a push source; a work tree of the examples that need no registry (talk
# publishes port 8080 through the routing mesh); `git push` (its output shows the plan,
# where each new task lands, and each service's rollout); `berth service ls`; then
# requests to port 8080 of every node's address, through the routing mesh: each is
# answered by a task of talk's web, on any node, which asks talk's api by name (the
# embedded DNS, api's VIP over the overlay) and says who answered.
#
# Safe to run again: the lab, the image and the source are kept, the push of an
# unchanged revision changes nothing. `make demo-clean` (this script with "clean")
# removes the lab and everything in it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BERTH=$PWD/bin/berth
LABCTL=$PWD/bin/labctl
NODES=${BERTH_DEMO_NODES:-3}
LAB=demo
IMAGE=berth.demo/busybox:1
SOURCE=demo
# The stacks of examples/ whose images the demo builds; the others name registry images.
STACKS=(reconcile notes talk)
# talk's web publishes this port through the routing mesh; its CGI asks api by name.
MESH_PORT=8080
MESH_PATH=/cgi-bin/talk

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root: berth runs containers through containerd and makes network namespaces" >&2
  exit 1
fi

if [ "${1:-}" = clean ]; then
  go build -o "$LABCTL" ./internal/netlab/labctl
  "$LABCTL" down --name "$LAB"
  echo "demo: removed the lab: its daemons, namespaces, containers, images and data dirs"
  exit 0
fi

scripts/install-test-deps.sh
make --no-print-directory build
go build -o "$LABCTL" ./internal/netlab/labctl

echo "demo: a lab of $NODES nodes named $LAB (scripts/lab.sh status shows it)"
"$LABCTL" up --name "$LAB" --bin "$BERTH" "$NODES"
eval "$("$LABCTL" env --name "$LAB")"

# on I ARGS...: berth on node I.
on() {
  local host="BERTH_LAB_HOST_$1"
  shift
  "$BERTH" --host "${!host}" "$@"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go run ./internal/testimage/mkimage -name "$IMAGE" -o "$tmp/image.tar"
for i in $(seq 1 "$BERTH_LAB_NODES"); do
  echo "demo: loading $IMAGE on $(eval echo "\$BERTH_LAB_NAME_$i")"
  on "$i" image load "$tmp/image.tar"
done

if ! on 1 source ls -q | grep -qx "$SOURCE"; then
  on 1 source add "$SOURCE" --push
fi

# A throwaway work tree of the examples, on top of what the cluster has (a push
# source takes fast-forwards only), with a git of its own: no user or system config,
# and no GIT_SSL_CAINFO, which would override the cluster CA that `source remote` sets.
unset GIT_SSL_CAINFO
export HOME=$tmp/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
mkdir -p "$HOME"
repo=$tmp/repo
git init -q -b main "$repo"
cd "$repo"
eval "$(on 1 source remote "$SOURCE")"
if git fetch -q berth main 2>/dev/null; then
  git reset -q FETCH_HEAD
fi
for s in "${STACKS[@]}"; do
  cp -r "$ROOT/examples/$s" .
done
git add -A
if git rev-parse -q --verify HEAD >/dev/null && git diff --cached --quiet; then
  echo "demo: the cluster runs this revision of the examples already"
else
  git -c user.name="berth demo" -c user.email=demo@berth.invalid commit -q -m "berth demo: ${STACKS[*]}"
fi
echo "demo: git push berth main"
git push berth main
cd "$ROOT"

echo
on 1 service ls
echo
echo "demo: $MESH_PATH on port $MESH_PORT of every node, through the routing mesh (from this shell, by the lab's host leg):"
# http_get HOST PORT PATH: the body of GET PATH, with bash's /dev/tcp: a fresh Debian
# has neither curl nor wget, and busybox's static wget crashes on some hosts.
http_get() {
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$3" "$1" >&3 &&
    sed "1,/^\r\?$/d" <&3' http_get "$1" "$2" "$3"
}
failed=0
for i in $(seq 1 "$BERTH_LAB_NODES"); do
  addr="BERTH_LAB_ADDR_$i"
  name="BERTH_LAB_NAME_$i"
  for _ in 1 2 3; do
    if answer=$(http_get "${!addr}" "$MESH_PORT" "$MESH_PATH" 2>"$tmp/get.err") && [ -n "$answer" ]; then
      echo "  ${!name} (${!addr}): $answer"
    else
      echo "  ${!name} (${!addr}): no answer: $(tail -1 "$tmp/get.err")"
      failed=1
    fi
  done
done
if [ "$failed" -ne 0 ]; then
  echo "demo: a node did not answer on port $MESH_PORT through the routing mesh" >&2
  exit 1
fi
