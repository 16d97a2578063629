#!/usr/bin/env bash
# The README's main job, the whole mission on one machine, as root on a fresh Debian
# machine: a lab of 3 berth nodes (1 manager, 2 workers; scripts/lab.sh), each a daemon
# in a network namespace of its own on the host's containerd; the demo image loaded on
# every node; a push source; a work tree of the examples that need no registry plus a
# `mesh` stack publishing port 8080; each stack's plan with its placement preview
# (`berth diff`: the node each task would land on); `git push` (its output shows the
# plan and each service's rollout); `berth service ls`; then a request to port 8080 of
# every node's address, through the routing mesh, each answered by a task that names
# itself.
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
STACKS=(reconcile notes)
MESH_PORT=8080

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
# The routing mesh's stack: 3 replicas, one per node, answering with their hostname
# on port 8080 of every node.
mkdir -p mesh
cat >mesh/compose.yaml <<EOF
# mesh: a port published in ingress mode answers on every node's address and reaches
# the service's tasks on any node.
services:
  hello:
    image: $IMAGE
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports:
      - "$MESH_PORT:8080"
    stop_grace_period: 2s
    deploy:
      replicas: 3
      placement:
        max_replicas_per_node: 1
EOF
git add -A
if git rev-parse -q --verify HEAD >/dev/null && git diff --cached --quiet; then
  echo "demo: the cluster runs this revision of the examples already"
else
  git -c user.name="berth demo" -c user.email=demo@berth.invalid commit -q -m "berth demo: ${STACKS[*]} mesh"
fi
# The plan of each stack against the live cluster, with the placement preview: the
# node each new task would land on (diff exits 1 when there are differences).
for s in "${STACKS[@]}" mesh; do
  echo "demo: berth diff -c $s/compose.yaml --stack $s"
  on 1 diff -c "$s/compose.yaml" --stack "$s" || [ $? -eq 1 ]
done
echo "demo: git push berth main"
git push berth main
cd "$ROOT"

echo
on 1 service ls
echo
echo "demo: port $MESH_PORT of every node, through the routing mesh (from this shell, by the lab's host leg):"
# http_get HOST PORT: the body of GET /, with bash's /dev/tcp: a fresh Debian has
# neither curl nor wget, and busybox's static wget crashes on some hosts.
http_get() {
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "GET / HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" >&3 &&
    sed "1,/^\r\?$/d" <&3' http_get "$1" "$2"
}
failed=0
for i in $(seq 1 "$BERTH_LAB_NODES"); do
  addr="BERTH_LAB_ADDR_$i"
  name="BERTH_LAB_NAME_$i"
  if answer=$(http_get "${!addr}" "$MESH_PORT" 2>"$tmp/get.err"); then
    echo "  ${!name} (${!addr}): answered by task $answer"
  else
    echo "  ${!name} (${!addr}): no answer: $(tail -1 "$tmp/get.err")"
    failed=1
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "demo: a node did not answer on port $MESH_PORT: the routing mesh is not there yet or is broken" >&2
  exit 1
fi
