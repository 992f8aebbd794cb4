# Shared by scripts/package_check, scripts/prometheus_check, scripts/console_check and
# scripts/cross_check (sourced, not run): counting checks, starting and stopping the processes a
# check starts, waiting for readiness.
# The caller sets WORK (its state directory) before sourcing and calls `finish` at the end.

PASSED=0
FAILED=0
PIDS=() # every background process started through `spawn`
CLEANUPS=() # commands run, last first, when the script exits

log() { echo "# $*" >&2; }
ok() { echo "ok  $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1: $2"; FAILED=$((FAILED + 1)); }

# check NAME COMMAND...: ok when COMMAND succeeds, else FAIL with its output.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$(tail -n 5 <<<"$out")"; fi
}

# expect NAME PATTERN ACTUAL: ACTUAL must match the glob PATTERN.
expect() {
    # shellcheck disable=SC2053 # PATTERN is a glob on purpose
    if [[ $3 == $2 ]]; then ok "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}

show_log() {
    log "last lines of $1:"
    tail -n 25 "$1" 2>/dev/null | sed 's/^/#   /' >&2
}

stop_pid() { # stop_pid PID: SIGTERM, then SIGKILL after 20 s; reaps it
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 80; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

# spawn LOG COMMAND...: COMMAND in the background, output to LOG; its pid in SPAWNED.
spawn() {
    local out=$1
    shift
    "$@" >"$out" 2>&1 &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

# stop PID: stop_pid and forget it.
stop() {
    local pid keep=()
    stop_pid "$1"
    for pid in "${PIDS[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
    PIDS=("${keep[@]}")
}

cleanup() {
    local pid i
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    PIDS=()
    for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[i]}" || true; done
    CLEANUPS=()
}

trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

# wait_until SECONDS PID PROBE...: until PROBE succeeds; gives up early when PID has exited.
wait_until() {
    local deadline=$((SECONDS + $1)) pid=$2
    shift 2
    while ((SECONDS < deadline)); do
        "$@" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.25
    done
    return 1
}

# A port already taken would make a stale process answer our probes.
port_free() { ! (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# need_ports ADDR...: every one free, else stop here.
need_ports() {
    local addr
    for addr in "$@"; do port_free "$addr" || die "ports" "$addr is in use (a stale process?)"; done
}

finish() {
    cleanup
    log "took $((SECONDS / 60))m$((SECONDS % 60))s; logs in ${WORK#"$PWD"/}"
    echo "$PASSED passed, $FAILED failed"
    if ((FAILED == 0)); then exit 0; else exit 1; fi
}

die() {
    fail "$1" "$2"
    finish
}

# apt_install COMMAND:PACKAGE...: installs the packages whose command is missing (root only).
apt_install() {
    local pair missing=()
    for pair in "$@"; do command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}"); done
    ((${#missing[@]})) || return 0
    [ "$(id -u)" = 0 ] || die "tools" "missing ${missing[*]} (run as root to install them)"
    log "installing ${missing[*]}"
    { timeout 600 apt-get update -q && timeout 600 apt-get install -y -q --no-install-recommends "${missing[@]}"; } >&2 ||
        die "tools" "apt-get install ${missing[*]} failed"
}

# oneM2M retrieve through a gateway: "HTTP-STATUS RSC" of GET URL as ORIGINATOR.
retrieve() { # retrieve URL ORIGINATOR
    curl -s -o /dev/null -w '%{http_code} %header{x-m2m-rsc}' \
        -H "X-M2M-Origin: $2" -H "X-M2M-RI: ops-$RANDOM" -H 'X-M2M-RVI: 3' \
        -H 'Accept: application/json' "$1"
}

# need_cargo_deb: the pinned cargo-deb, installed with cargo when missing or another version.
need_cargo_deb() {
    local version=3.8.0
    [[ $(cargo deb --version 2>/dev/null) == *"$version"* ]] && return 0
    log "cargo install cargo-deb $version"
    CARGO_INCREMENTAL=0 flock /tmp/m2mguard-build.lock \
        cargo install cargo-deb --locked --version "$version" --quiet >&2 ||
        die "tools" "cargo install cargo-deb $version failed"
}

# gateway_config FILE KIT WRITER: a gateway config in FILE: HTTP on $GW_HTTP in front of
# $UPSTREAM, its admin API on $GW_ADMIN, the shipped policies (copied to $WORK/policies), state
# in $WORK/gateway, following the authority with KIT/sync.toml (from `authority gateway add`)
# by long-polls of 2 s. WRITER names the script in the file's first line.
gateway_config() {
    mkdir -p "$WORK/policies" && cp policies/* "$WORK/policies/"
    {
        cat <<TOML
# Written by $3.
[gateway]
cse_id = "/id-in"
cse_name = "cse-in"
data_dir = "$WORK/gateway"

[http]
listen = "$GW_HTTP"
upstream = "http://$UPSTREAM"

[admin]
listen = "$GW_ADMIN"

[policy]
dir = "$WORK/policies"

TOML
        cat "$2/sync.toml"
        echo 'poll_wait_s = 2'
    } >"$1"
}
