#!/usr/bin/env bash
# Checks the container and deploy files without a Docker engine. CI runs it
# after tests/run.sh (so build/s2proxy exists):
#   deploy/check-dockerfile.sh [S2PROXY_BINARY]        (default build/s2proxy)
# Static checks: the build stage uses deploy/install-deps.sh build and the same
# CMake preset as tests/run.sh; COPY sources exist and .dockerignore keeps every
# tracked file; the apt packages of both images exist (apt-cache); S2PROXY_*
# names and TOML keys are real flags; the compose file's references resolve.
# With the binary: its shared libraries all come from the runtime packages;
# the image's ENV + ENTRYPOINT start it and the HEALTHCHECK command passes
# (and fails once it stopped); the TOML example passes check-config; the
# systemd unit passes systemd-analyze verify. With prosody and go-sendxmpp
# installed: the Prosody image's config and entrypoint run (outside a
# container) and a message goes through s2proxy configured as in the compose file.
# Prints one line per check; exits 1 when any check failed.
# shellcheck disable=SC2016,SC2317,SC2013,SC2001  # single-quoted bash -c bodies, trap function
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
bin=$(realpath -m "${1:-build/s2proxy}")
fails=0
ok() { printf 'ok    %s\n' "$*"; }
bad() { printf 'FAIL  %s\n' "$*"; fails=$((fails + 1)); }
skip() { printf 'skip  %s\n' "$*"; }
check() { # DESCRIPTION COMMAND... : ok when the command succeeds
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$what"; else bad "$what"; printf '%s\n' "$out" | tail -5 | sed 's/^/      /'; fi
}
has() { command -v "$1" >/dev/null 2>&1; }
py=/usr/bin/python3
has $py || py=python3
tmp=$(mktemp -d /tmp/s2-check-deploy.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# Dockerfile instructions, one per line (continuations joined, comments dropped).
instructions() { grep -v '^[[:space:]]*#' "$1" | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' | grep -v '^[[:space:]]*$'; }
# Lines of stage N (1-based) of a Dockerfile.
stage() { instructions "$1" | awk -v n="$2" '/^FROM /{s++} s==n'; }
# Packages after "apt-get install" in the given lines (until the next && or ;).
apt_pkgs() { grep -o 'apt-get install[^&;]*' | tr ' ' '\n' | grep -v -e '^-' -e '^$' -e '^apt-get$' -e '^install$' | sort -u; }

df=Dockerfile
build=$(stage $df 1)
runtime=$(stage $df 2)

# --- Dockerfile: build stage = CI's steps -------------------------------------------------------
check "Dockerfile has two stages: debian:bookworm build, debian:bookworm-slim runtime" \
  bash -c '[ "$1" = 2 ] && grep -q "^FROM debian:bookworm AS build$" <<<"$2" && grep -q "^FROM debian:bookworm-slim$" <<<"$3"' \
  _ "$(instructions $df | grep -c '^FROM ')" "$build" "$runtime"
check "build stage installs with deploy/install-deps.sh build (as CI does)" \
  grep -qE '^RUN deploy/install-deps\.sh build( |$)' <<<"$build"
check "tests/run.sh installs with deploy/install-deps.sh" grep -q '^deploy/install-deps.sh' tests/run.sh
for c in "cmake --preset default" "cmake --build --preset default"; do
  check "'$c' in the build stage and in tests/run.sh" \
    bash -c 'grep -q "^RUN.*$1" <<<"$2" && grep -q "^$1" tests/run.sh' _ "$c" "$build"
done
check "preset 'default' builds into build/ (the path the runtime stage copies from)" \
  $py -c 'import json,sys; p=[c for c in json.load(open("CMakePresets.json"))["configurePresets"] if c["name"]=="default"][0]; sys.exit(p["binaryDir"]!="${sourceDir}/build")'
check "runtime stage copies /src/build/s2proxy from the build stage (WORKDIR /src)" \
  bash -c 'grep -q "^WORKDIR /src$" <<<"$1" && grep -q "^COPY --from=build /src/build/s2proxy /usr/local/bin/s2proxy$" <<<"$2"' _ "$build" "$runtime"
check "runtime stage: non-root USER, volume, ports 5222 5223 9102, ENTRYPOINT s2proxy run, HEALTHCHECK" bash -c '
  u=$(grep "^USER " <<<"$1" | tail -1 | cut -d" " -f2); [ -n "$u" ] && [ "${u%%:*}" != root ] && [ "${u%%:*}" != 0 ] &&
  grep -q "^VOLUME .*/var/lib/s2proxy" <<<"$1" && grep -q "^EXPOSE 5222 5223 9102$" <<<"$1" &&
  grep -q "^ENTRYPOINT \[\"s2proxy\", \"run\"\]$" <<<"$1" && grep -q "^HEALTHCHECK .*CMD \[" <<<"$1"' _ "$runtime"
for d in $df deploy/prosody/Dockerfile; do
  while read -r src; do
    check "$d: COPY source $src exists" test -e "$(dirname "$d")/$src"
  done < <(instructions "$d" | grep '^COPY ' | grep -v -- '--from=' | awk '{for (i=2;i<NF;i++) print $i}' | grep -v '^\.$')
  while read -r path; do
    check "$d: RUN uses $path, which is in the repository and executable" test -x "$path"
  done < <(instructions "$d" | grep '^RUN ' | grep -oE '(deploy|tests|cmake|proxy|common)/[A-Za-z0-9_./-]+' | sort -u)
done
check ".dockerignore keeps every tracked file and drops .git and build trees" $py - <<'EOF'
import fnmatch, subprocess, sys
pats = [l.strip().rstrip("/") for l in open(".dockerignore") if l.strip() and not l.startswith("#")]
def ignored(path):
    parts = path.split("/")
    for pat in pats:
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if fnmatch.fnmatch(sub, pat) or (pat.startswith("**/") and fnmatch.fnmatch(parts[i - 1], pat[3:])):
                return True
    return False
files = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout.split()
lost = [f for f in files if ignored(f)]
if lost: sys.exit("tracked files excluded from the build context: %s" % lost[:10])
for p in (".git/HEAD", "build/CMakeCache.txt", "build-asan/x", "node_modules/x"):
    if not ignored(p): sys.exit("not excluded: " + p)
EOF

# --- packages -------------------------------------------------------------------------------------
runtime_pkgs=$(apt_pkgs <<<"$runtime")
prosody_pkgs=$(stage deploy/prosody/Dockerfile 1 | apt_pkgs)
build_pkgs=$(sed -n '/^build_pkgs=(/,/)/p' deploy/install-deps.sh | sed 's/build_pkgs=//' | tr -d '()' | tr ' ' '\n' | grep -v '^$' | sort -u)
if has apt-cache; then
  # One apt-cache call for all of them (about a second each otherwise): the
  # packages it has records for.
  # shellcheck disable=SC2086  # word splitting: one argument per package
  known=$(apt-cache show --no-all-versions $build_pkgs $runtime_pkgs $prosody_pkgs 2>/dev/null |
    sed -n 's/^Package: //p' | sort -u)
  for p in $build_pkgs $runtime_pkgs $prosody_pkgs; do
    check "Debian package $p exists (apt-cache show)" grep -qxF -- "$p" <<<"$known"
  done
else
  skip "apt-cache not found: package names not checked"
fi

# --- names: S2PROXY_* variables and TOML keys are flags ------------------------------------------
if [ -x "$bin" ]; then
  flags=$("$bin" run --help | grep -oE '^  --[a-z0-9-]+' | sed 's/^  --//' | grep -vx -e help -e config)
else
  flags=$(grep -oE '^ *flag\("[a-z0-9-]+"' proxy/config.cpp | grep -oE '"[a-z0-9-]+"' | tr -d '"' | grep -vx config)
fi
envs=$(sed 's/-/_/g; s/.*/S2PROXY_\U&/' <<<"$flags")
for f in $df deploy/docker-compose.yml deploy/docker-compose.cluster.yml; do
  for v in $(grep -oE 'S2PROXY_[A-Z0-9_]+' "$f" | sort -u); do
    check "$f: $v is a flag's variable" grep -qx "$v" <<<"$envs"
  done
done
toml=deploy/s2proxy.toml.example
for k in $(grep -oE '^#?[a-z0-9-]+ =' $toml | tr -d '# =' | sort -u); do
  check "$toml: key $k is a flag" grep -qx "$k" <<<"$flags"
done
for k in $flags; do
  check "$toml documents $k" grep -qE "^#?$k = " $toml
done

# --- compose --------------------------------------------------------------------------------------
if $py -c 'import yaml' 2>/dev/null; then
  for compose in deploy/docker-compose.yml deploy/docker-compose.cluster.yml; do
  check "$(basename $compose): builds, volumes, networks and the upstream and store services resolve" env COMPOSE=$compose $py - <<'EOF'
import os, sys, yaml
c = yaml.safe_load(open(os.environ["COMPOSE"]))
svc, errs = c["services"], []
for name, s in svc.items():
    b = s.get("build")
    if b:
        ctx = os.path.join("deploy", b if isinstance(b, str) else b["context"])
        dfile = os.path.join(ctx, "Dockerfile" if isinstance(b, str) else b.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dfile): errs.append("%s: no %s" % (name, dfile))
    for v in s.get("volumes", []):
        src = v.split(":")[0]
        if not src.startswith((".", "/")) and src not in (c.get("volumes") or {}): errs.append("%s: volume %s undeclared" % (name, src))
    for n in s.get("networks", []):
        if n not in (c.get("networks") or {}): errs.append("%s: network %s undeclared" % (name, n))
    for d in (s.get("depends_on") or {}):
        if d not in svc: errs.append("%s: depends on unknown %s" % (name, d))
proxies = [n for n in svc if n.startswith("s2proxy")]
if not proxies: errs.append("no s2proxy service")
for p in proxies:
    env = svc[p]["environment"]
    targets = [env["S2PROXY_UPSTREAM"]]
    store = env.get("S2PROXY_STORE", "lmdb")
    if store.startswith("postgresql://"):
        auth, _, rest = store.split("://", 1)[1].rpartition("@")
        if ":" in auth: errs.append("%s: a password in S2PROXY_STORE (use PGPASSWORD or ~/.pgpass)" % p)
        targets.append(rest.split("/")[0])
    for hostport in targets:
        host = hostport.rsplit(":", 1)[0]
        if host not in svc: errs.append("%s: %s is not a service" % (p, host)); continue
        if not set(svc[host].get("networks", [])) & set(svc[p].get("networks", [])): errs.append("%s: no network shared with %s" % (p, host))
        if svc[host].get("ports"): errs.append("%s publishes ports: clients could bypass s2proxy" % host)
if errs: sys.exit("\n".join(errs))
EOF
  done
else
  skip "python3-yaml not installed: docker-compose.yml not parsed"
fi

# --- live checks with the binary ---------------------------------------------------------------
free_ports() { $py -c 'import socket
ss=[socket.socket() for _ in range('"$1"')]
[s.bind(("127.0.0.1",0)) for s in ss]; print(" ".join(str(s.getsockname()[1]) for s in ss))'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
if [ -x "$bin" ]; then
  # Shared libraries: each from a runtime package or from bookworm-slim's base (libc6, libgcc-s1, libstdc++6).
  if has dpkg-query; then
    for lib in $(ldd "$bin" | awk '/=> \//{print $3}'); do
      pkg=""
      for cand in "$lib" "/usr${lib#/usr}" "${lib#/usr}" "$(readlink -f "$lib")"; do
        pkg=$(dpkg-query -S "$cand" 2>/dev/null | head -1 | cut -d: -f1) && [ -n "$pkg" ] && break
      done
      check "$(basename "$lib") comes from a runtime package (${pkg:-?})" \
        grep -qxF -- "${pkg:-none}" <<<"$runtime_pkgs"$'\nlibc6\nlibgcc-s1\nlibstdc++6'
    done
  fi

  # The image's ENV and ENTRYPOINT, on free loopback ports; the operator adds DOMAIN and UPSTREAM.
  read -r p1 p2 p3 <<<"$(free_ports 3)"
  envs_image=$(instructions $df | sed -n 's/^ENV //p' | tr ' ' '\n' | grep '^S2PROXY_')
  mapfile -t run_env < <(sed "s#^S2PROXY_DATA_DIR=.*#S2PROXY_DATA_DIR=$tmp/data#
    s#^S2PROXY_LISTEN=.*#S2PROXY_LISTEN=127.0.0.1:$p1#; s#^S2PROXY_LISTEN_TLS=.*#S2PROXY_LISTEN_TLS=127.0.0.1:$p2#
    s#^S2PROXY_METRICS=.*#S2PROXY_METRICS=0.0.0.0:$p3#" <<<"$envs_image")
  run_env=(env "${run_env[@]}" S2PROXY_DOMAIN=example.org S2PROXY_UPSTREAM=127.0.0.1:9)
  hc=$(instructions $df | sed -n 's/^HEALTHCHECK .*CMD \(\[.*\]\)$/\1/p')
  mapfile -t hc_argv < <($py -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$hc")
  # The image has s2proxy on PATH; here it is the binary under test.
  [ "${hc_argv[0]}" = s2proxy ] && hc_argv[0]=$bin
  check "image settings pass check-config" "${run_env[@]}" "$bin" check-config
  "${run_env[@]}" "$bin" run >"$tmp/image.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  if wait_port "$p3"; then
    check "HEALTHCHECK command passes against the running image settings" "${run_env[@]}" timeout 10 "${hc_argv[@]}"
    check "self-signed certificate created in the data dir" test -s "$tmp/data/tls/example.org.crt"
    kill -TERM "$pid"
    check "SIGTERM stops it with exit 0 within 10 s (docker stop)" timeout 10 tail --pid="$pid" -f /dev/null
    wait "$pid"
    check "exit status 0 after SIGTERM" test $? = 0
    check "HEALTHCHECK fails once s2proxy is gone" bash -c '! "$@"' _ "${run_env[@]}" timeout 10 "${hc_argv[@]}"
  else
    bad "s2proxy with the image's settings did not open its metrics port"
    tail -5 "$tmp/image.log" | sed 's/^/      /'
  fi

  check "$toml passes check-config" "$bin" check-config --config $toml
  # Every documented line uncommented (but upstream-insecure, which excludes upstream-ca).
  # The files it names must exist now (check-config checks them): point them at temp files.
  mkdir -p "$tmp/etc" && touch "$tmp/etc/ca.pem" "$tmp/etc/crt.pem" "$tmp/etc/key.pem" && chmod 600 "$tmp/etc/key.pem"
  sed -E 's/^#([a-z0-9-]+ = )/\1/' $toml | grep -v '^upstream-insecure' |
    sed -e "s#^upstream-ca = .*#upstream-ca = \"$tmp/etc/ca.pem\"#; s#^tls-cert = .*#tls-cert = \"$tmp/etc/crt.pem\"#" \
      -e "s#^tls-key = .*#tls-key = \"$tmp/etc/key.pem\"#; s#^vault-key-file = .*#vault-key-file = \"$tmp/etc/vault.key\"#" \
      -e "s#^data-dir = .*#data-dir = \"$tmp/etc/data\"#" >"$tmp/all.toml"
  check "$toml with every key uncommented passes check-config" "$bin" check-config --config "$tmp/all.toml"

  if has systemd-analyze; then
    sed "s#/usr/local/bin/s2proxy#$bin#g" deploy/s2proxy.service >"$tmp/s2proxy.service"
    check "s2proxy.service passes systemd-analyze verify" systemd-analyze verify "$tmp/s2proxy.service"
  else
    skip "systemd-analyze not found"
  fi

  # The compose pair outside containers: Prosody with the image's config and entrypoint
  # (paths and ports moved into the temp dir), s2proxy with the compose file's settings.
  if has prosody && has go-sendxmpp; then
    read -r pp sp st sm <<<"$(free_ports 4)"
    pd=$tmp/prosody
    mkdir -p "$pd/certs" "$pd/data"
    sed -e "s#/var/lib/prosody-certs#$pd/certs#; s#\"/var/lib/prosody\"#\"$pd/data\"#; s#{ 5222 }#{ $pp }#; s#{ 5269 }#{ }#" \
      deploy/prosody/prosody.cfg.lua >"$pd/prosody.cfg.lua"
    # (global options must come before VirtualHost)
    [ "$(id -u)" = 0 ] && sed -i '1i run_as_root = true -- test copy only' "$pd/prosody.cfg.lua"
    sed -e "s#/var/lib/prosody-certs#$pd/certs#; s#/etc/prosody/prosody.cfg.lua#$pd/prosody.cfg.lua#" \
      deploy/prosody/entrypoint.sh >"$pd/entrypoint.sh"
    PROSODY_DOMAIN=compose.test PROSODY_USERS="alice:alicepw bob:bobpw" setsid sh "$pd/entrypoint.sh" >"$pd/log" 2>&1 </dev/null &
    pids+=("$!")
    if wait_port "$pp"; then
      ok "Prosody image config + entrypoint start (port $pp)"
      env S2PROXY_DOMAIN=compose.test S2PROXY_UPSTREAM="localhost:$pp" S2PROXY_UPSTREAM_TLS=starttls \
        S2PROXY_UPSTREAM_CA="$pd/certs/compose.test.crt" S2PROXY_DATA_DIR="$tmp/cdata" \
        S2PROXY_LISTEN="127.0.0.1:$sp" S2PROXY_LISTEN_TLS="127.0.0.1:$st" S2PROXY_METRICS="127.0.0.1:$sm" \
        "$bin" run >"$tmp/compose-s2proxy.log" 2>&1 &
      pids+=("$!")
      if wait_port "$sm"; then
        check "message through s2proxy to the Prosody image config (compose settings)" \
          timeout 30 go-sendxmpp -n -u alice@compose.test -p alicepw -j "127.0.0.1:$sp" bob@compose.test <<<"check-dockerfile"
      else
        bad "s2proxy with the compose settings did not start"
        tail -5 "$tmp/compose-s2proxy.log" | sed 's/^/      /'
      fi
    else
      bad "Prosody image config + entrypoint did not open port $pp"
      tail -5 "$pd/log" | sed 's/^/      /'
    fi
  else
    skip "prosody or go-sendxmpp not installed: compose pair not run"
  fi
else
  skip "no binary at $bin: live checks skipped (build it first: cmake --build --preset default)"
fi

if has shellcheck; then
  check "shellcheck deploy/*.sh deploy/prosody/entrypoint.sh" shellcheck deploy/*.sh deploy/prosody/entrypoint.sh
fi

[ $fails = 0 ] && { echo "all deploy checks passed"; exit 0; }
echo "$fails deploy check(s) failed"
exit 1
