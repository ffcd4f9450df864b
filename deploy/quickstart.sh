#!/usr/bin/env bash
# Quickstart (README command 1). On Debian 12, as root or as a user with sudo:
#   deploy/quickstart.sh
# installs what is missing (deploy/install-deps.sh build + Prosody), builds
# s2proxy with the default preset, starts a PRIVATE Prosody 0.12 on loopback
# (own config, data and certificate under the state dir; never the system
# service) and runs s2proxy in the foreground in front of it. Ctrl-C (or
# SIGTERM) stops s2proxy, then the private Prosody.
#
# Options (environment variable in brackets, then the default):
#   --domain D        XMPP domain                    [QUICKSTART_DOMAIN]  legacy.test
#   --port P          s2proxy STARTTLS port          [QUICKSTART_PORT]    5222
#   --tls-port P      s2proxy direct-TLS port        [QUICKSTART_TLS_PORT] port+1
#   --metrics-port P  Prometheus /metrics port       [QUICKSTART_METRICS_PORT] 9102
#   --prosody-port P  Prosody c2s port (P+1: direct TLS) [QUICKSTART_PROSODY_PORT] 15222
#   --state-dir DIR   Prosody and s2proxy state      [QUICKSTART_STATE_DIR] /tmp/s2proxy-quickstart
#   --fresh           wipe the state dir first (accounts, archives, certificates)
#   -- ARGS...        passed to `s2proxy run` (e.g. -- --log-level debug)
# Everything listens on 127.0.0.1 only. Accounts: alice/alicepw, bob/bobpw, carol/carolpw.
set -euo pipefail
cd "$(dirname "$0")/.."

domain=${QUICKSTART_DOMAIN:-legacy.test}
port=${QUICKSTART_PORT:-5222}
tls_port=${QUICKSTART_TLS_PORT:-}
metrics_port=${QUICKSTART_METRICS_PORT:-9102}
prosody_port=${QUICKSTART_PROSODY_PORT:-15222}
state=${QUICKSTART_STATE_DIR:-/tmp/s2proxy-quickstart}
fresh=0
extra=()
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --domain) domain=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --tls-port) tls_port=$2; shift 2 ;;
    --metrics-port) metrics_port=$2; shift 2 ;;
    --prosody-port) prosody_port=$2; shift 2 ;;
    --state-dir) state=$2; shift 2 ;;
    --fresh) fresh=1; shift ;;
    -h | --help) usage ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown option $1" >&2; usage 2 >&2 ;;
  esac
done
tls_port=${tls_port:-$((port + 1))}
pdir=$state/prosody
data=$state/data
cfg=$pdir/prosody.cfg.lua

say() { printf '[quickstart] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # PORT PID: until PORT accepts, while PID lives (20 s)
  for _ in $(seq 200); do
    port_busy "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# --- 1. packages ---------------------------------------------------------------------------
command -v apt-get >/dev/null || die "this script is for Debian 12 (apt-get not found)"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
deploy/install-deps.sh build
pkgs=(prosody prosody-modules lua-unbound lua-event openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  [ -z "$sudo" ] || command -v sudo >/dev/null || die "run as root, or install sudo"
  # The packaged prosody service must not start (it would take port 5222):
  # policy-rc.d answers 101 ("not allowed") to the package's start request.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
  [ $made_policy = 1 ] && $sudo rm -f /usr/sbin/policy-rc.d
  if [[ " ${missing[*]} " == *" prosody "* ]] && [ -d /run/systemd/system ]; then
    say "disabling the packaged prosody.service (it would start on 5222 at the next boot)"
    $sudo systemctl disable --now prosody >/dev/null 2>&1 || true
  fi
fi

# --- 2. ports, build --------------------------------------------------------------------------
old=$(cat "$pdir/prosody.pid" 2>/dev/null || true)
if [ -n "$old" ] && grep -qF "$cfg" "/proc/$old/cmdline" 2>/dev/null; then
  say "stopping the private Prosody left over from an earlier run (PID $old)"
  kill "$old"
  for _ in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
fi
for p in "$port" "$tls_port" "$metrics_port" "$prosody_port" "$((prosody_port + 1))"; do
  port_busy "$p" && die "127.0.0.1:$p is in use (ss -ltnp | grep :$p); choose other ports (--help)"
done
say "building s2proxy (cmake --preset default)"
cmake --preset default >/dev/null
cmake --build --preset default --target s2proxy
bin=$PWD/build/s2proxy

# --- 3. private Prosody ----------------------------------------------------------------------
[ $fresh = 1 ] && rm -rf "$state"
mkdir -p "$pdir/data" "$data"
chmod 700 "$state"
crt=$pdir/$domain.crt key=$pdir/$domain.key
if [ ! -s "$crt" ]; then
  # Self-signed and its own CA, so s2proxy can verify it with --upstream-ca.
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -subj "/CN=$domain" \
    -addext "subjectAltName=DNS:$domain,DNS:*.$domain" \
    -addext "basicConstraints=critical,CA:TRUE" -keyout "$key" -out "$crt" 2>/dev/null
  chmod 600 "$key"
fi
cat >"$cfg" <<EOF
-- Written by s2proxy's deploy/quickstart.sh on every run; edit the script, not this file.
run_as_root = true  -- harmless when not root; the quickstart may run as root
data_path = "$pdir/data"
log = { { levels = { min = "info" }, to = "file", filename = "$pdir/prosody.log" } }
network_backend = "epoll"
interfaces = { "127.0.0.1" }
c2s_ports = { $prosody_port }
c2s_direct_tls_ports = { $((prosody_port + 1)) }
s2s_ports = {}; component_ports = {}; http_ports = {}; https_ports = {}
modules_disabled = { "s2s" }
ssl = { certificate = "$crt"; key = "$key" }
c2s_direct_tls_ssl = { certificate = "$crt"; key = "$key" }
c2s_require_encryption = true
authentication = "internal_hashed"
storage = "internal"
modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "private"; "pep"; "vcard"; "blocklist";
  "carbons"; "mam"; "csi_simple"; "offline"; "smacks"; "cloud_notify";
  "ping"; "version"; "uptime"; "time";
}
archive_expires_after = "never"  -- MAM keeps everything
default_archive_policy = true
smacks_hibernation_time = 300
VirtualHost "$domain"
EOF
for u in alice bob carol; do
  prosodyctl --config "$cfg" register "$u" "$domain" "${u}pw" >/dev/null ||
    die "prosodyctl could not create $u@$domain"
done

prosody_pid="" proxy_pid=""
# shellcheck disable=SC2317  # (called through the traps)
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$proxy_pid" ] && kill -0 "$proxy_pid" 2>/dev/null; then
    kill -TERM "$proxy_pid" 2>/dev/null || true # drains: clients get a resumable close
    wait "$proxy_pid" 2>/dev/null || true
  fi
  if [ -n "$prosody_pid" ] && kill -0 "$prosody_pid" 2>/dev/null; then
    say "stopping the private Prosody (PID $prosody_pid)"
    kill -TERM "$prosody_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$prosody_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$prosody_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting the private Prosody ($cfg, log $pdir/prosody.log)"
setsid prosody --config "$cfg" -F >"$pdir/stdout.log" 2>&1 </dev/null &
prosody_pid=$!
echo "$prosody_pid" >"$pdir/prosody.pid"
wait_port "$prosody_port" "$prosody_pid" ||
  die "Prosody did not open 127.0.0.1:$prosody_port: $(tail -5 "$pdir/stdout.log" "$pdir/prosody.log")"

# --- 4. s2proxy, in the foreground ---------------------------------------------------------
"$bin" run --domain "$domain" --upstream "127.0.0.1:$prosody_port" --upstream-tls starttls \
  --upstream-ca "$crt" --listen "127.0.0.1:$port" --listen-tls "127.0.0.1:$tls_port" \
  --metrics "127.0.0.1:$metrics_port" --data-dir "$data" "${extra[@]}" &
proxy_pid=$!
# The metrics port opens after the client listeners (and logs no session).
if ! wait_port "$metrics_port" "$proxy_pid"; then
  wait "$proxy_pid" && rc=1 || rc=$?
  proxy_pid=""
  die "s2proxy did not start (exit $rc)"
fi
fp=$(openssl x509 -noout -fingerprint -sha256 -in "$data/tls/$domain.crt" | cut -d= -f2)
# The banner suggests go-sendxmpp, which the build dependencies do not include.
sendxmpp_note=""
command -v go-sendxmpp >/dev/null 2>&1 || sendxmpp_note="(not installed: sudo apt-get install go-sendxmpp)"
cat >&2 <<EOF

  s2proxy $("$bin" version | cut -d' ' -f2) is running in front of a private Prosody $(dpkg-query -W -f='${Version}' prosody | cut -d- -f1).
  Domain     $domain — accounts alice/alicepw, bob/bobpw, carol/carolpw
  Connect    server 127.0.0.1, port $port (STARTTLS) or $tls_port (direct TLS).
             "$domain" is not in DNS: set the client's server/host to 127.0.0.1.
             The certificate is self-signed by the proxy: accept it
             ($data/tls/$domain.crt, SHA-256 $fp).
  Try        echo hi | go-sendxmpp -n -u alice@$domain -p alicepw -j 127.0.0.1:$port bob@$domain $sendxmpp_note
             go-sendxmpp -n -l -u bob@$domain -p bobpw -j 127.0.0.1:$port     (listen as bob)
             profanity: /connect alice@$domain server 127.0.0.1 port $port tls trust
  Metrics    curl -s http://127.0.0.1:$metrics_port/metrics
  State      s2proxy $data, Prosody $pdir (kept; --fresh wipes)
  Ctrl-C stops s2proxy, then the private Prosody.

EOF
wait "$proxy_pid" && rc=0 || rc=$?
proxy_pid=""
exit "$rc"
