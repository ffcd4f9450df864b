#!/usr/bin/env bash
# Installs the Debian 12 packages s2proxy needs to build, run and test.
# Idempotent: installs only what is missing. Used by the README's commands,
# by .ci/run and by the Dockerfile's build stage, so all three stay the same.
#   deploy/install-deps.sh [build|test]   (default: test = build + test tools)
set -euo pipefail
what=${1:-test}
build_pkgs=(build-essential cmake ninja-build pkg-config
  libuv1-dev libstrophe-dev libssl-dev liblmdb-dev libcli11-dev doctest-dev libexpat1-dev
  libtomlplusplus-dev libidn-dev libsystemd-dev libpq-dev)
test_pkgs=(python3 python3-slixmpp python3-pytest go-sendxmpp openssl
  prosody prosody-modules lua-unbound lua-event clang libclang-rt-14-dev clang-format git
  fail2ban postgresql-15 erlang-p1-sqlite3)
pkgs=("${build_pkgs[@]}")
[ "$what" = test ] && pkgs+=("${test_pkgs[@]}")
# xmpp.js needs node + npm; a machine may already have them from another
# source (NodeSource's nodejs ships npm and conflicts with Debian's npm).
if [ "$what" = test ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
echo "[s2proxy] installing: ${missing[*]}" >&2
# Packaged daemons (prosody) must not start as system services: the tests
# run their own private instances.
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
[ $made_policy = 1 ] && $sudo rm -f /usr/sbin/policy-rc.d
exit 0
