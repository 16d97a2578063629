#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine (run as root), and nothing when
# it is already there. Today: git, whose git-upload-pack go-git's file:// transport runs.
set -euo pipefail
missing=()
command -v git >/dev/null || missing+=(git)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
