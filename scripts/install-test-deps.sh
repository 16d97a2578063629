#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine (run as root),
# and nothing when it is already there, then starts containerd when it is not
# answering:
#   git             go-git's file:// transport runs git-upload-pack
#   containerd runc the data plane's integration tests run real containers
#   busybox-static  the test and demo images are built from /bin/busybox
#   iproute2        network namespaces (ip netns) in the netstack tests
#   nftables        nft, to look at the rules netstack leaves (or does not)
#   tini            its static build is the init of services with `init: true`
#   docker-registry a registry on loopback for the image pull tests
#   iperf3          bench/overlay measures overlay throughput with it
#   systemd man-db  systemd-analyze verify checks the unit `make install` writes
#   openssh-server  -H ssh:// is tested against a real sshd on loopback (and ssh,
#                   ssh-keygen of openssh-client, which it depends on)
#   chromium        headless, the web dashboard's browser test (cmd/berth ui_e2e_test.go)
#   openssl         makes an operator's root CA for the `swarm ca --ca-cert` test
set -euo pipefail

need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null || missing+=("$2")
}
missing=()
need git git
need containerd containerd
need runc runc
need ip iproute2
need nft nftables
need tini-static tini
need docker-registry docker-registry
need iperf3 iperf3
need systemd-analyze systemd
need man man-db
need chromium chromium
need openssl openssl
[ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null || missing+=(openssh-server)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || missing+=(busybox-static)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# containerd: Debian's package ships a systemd unit, but CI machines and containers
# often run no systemd, so start the daemon directly when its socket does not answer.
sock=/run/containerd/containerd.sock
if ! ctr --address "$sock" version >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: containerd is not running at $sock; start it as root" >&2
    exit 1
  fi
  log=/var/log/berth-containerd.log
  # Without the descriptors this script inherited: a caller's lock (flock) would
  # otherwise be held for as long as containerd runs.
  (
    for fd in /proc/self/fd/*; do
      n=${fd##*/}
      [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-" 2>/dev/null
    done
    exec setsid containerd >"$log" 2>&1 < /dev/null
  ) &
  for _ in $(seq 1 100); do
    ctr --address "$sock" version >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! ctr --address "$sock" version >/dev/null 2>&1; then
    echo "install-test-deps: containerd did not start; its log ($log):" >&2
    tail -20 "$log" >&2
    exit 1
  fi
  echo "install-test-deps: started containerd (log: $log)"
fi
