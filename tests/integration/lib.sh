# lib.sh — shared harness of the integration tests (sourced, bash).
#
# Each test mounts the real pactownfs on a temporary directory, with its own
# cache, sandboxes and uv cache, installing offline from the local wheelhouse
# that tests/fixtures/make_wheelhouse.py writes. The EXIT trap stops services,
# kills the daemon and unmounts, also when the test fails.
# Exit codes: 0 pass, 1 fail, 77 skip (meson's convention).

set -euo pipefail

T_NAME=$(basename "$0" .sh)
SRC=${PACTOWN_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${PACTOWN_BUILD:-$SRC/build}
PACTOWNFS=$BUILD/mount/pactownfs
PACTOWN=$BUILD/tools/pactown/pactown
SHARED=${PACTOWN_SHARED:-$SRC/../shared}
WORK=$(mktemp -d /tmp/pt-it.XXXXXX)
chmod 711 "$WORK"  # services of users (run --user) run as uids of their own: they pass through to the venvs
MNT=$WORK/mnt
DAEMON_PID=
DAEMON_LOG=$WORK/daemon.log

say() { printf '%s: %s\n' "$T_NAME" "$*"; }
fail() { printf 'FAIL: %s: %s\n' "$T_NAME" "$*"; [ -f "$DAEMON_LOG" ] && { echo "--- daemon log ---"; tail -n 40 "$DAEMON_LOG"; }; exit 1; }
skip() { printf 'SKIP: %s: %s\n' "$T_NAME" "$*"; exit 77; }
pass() { check_daemon_log; printf 'PASS: %s\n' "$T_NAME"; exit 0; }

# check_daemon_log: the daemon's stderr holds no error or warning (nor a
# libfuse or sanitizer complaint) but those the test expects: EXPECT_DAEMON,
# an extended regular expression of the lines it provokes on purpose
check_daemon_log() {
    local log bad
    for log in "$DAEMON_LOG" ${EXTRA_DAEMON_LOGS:-}; do
        [ -f "$log" ] || continue
        bad=$(grep -Ei 'warning|error|fail|fuse:|assert|sanitizer|runtime error|leak|abort' "$log" \
              | grep -Ev "${EXPECT_DAEMON:-^\$}" || true)
        [ -z "$bad" ] || fail "the daemon's stderr has errors or warnings: $bad"
    done
}

# wait_until SECONDS CMD...: run CMD every 50 ms until it succeeds or the deadline passes
wait_until() {
    local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# proc_gone PID: the process has ended (no such process, or a zombie)
proc_gone() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 0
    [ -z "$st" ] || [ "$st" = Z ]
}

# block_builds_on REQ: builds of sets that contain the line REQ wait (after
# creating $PT_BLOCK_MARK) until release_builds; use with
# mount_start -o uv="$BLOCKING_UV"
BLOCKING_UV=$SRC/tests/fixtures/blocking-uv
block_builds_on() {
    [ -n "$UV_BIN" ] || skip "uv is not installed"
    export PT_REAL_UV=$UV_BIN PT_BLOCK_MARK=$WORK/blocked PT_BLOCK_ON=$1 PT_BLOCK_UNTIL=$WORK/release
    rm -f "$PT_BLOCK_MARK" "$PT_BLOCK_UNTIL"
}
release_builds() { : > "$PT_BLOCK_UNTIL"; }

# end_warm: end the warm processes (docs/WARM.md) as warm_idle_seconds would: with warm on
# (auto, the default; tools/test runs the suite once more with warm = no), a venv's warm
# process leases it; tests of what happens once its services are gone end them first
end_warm() {
    local p
    for p in "$WORK"/cache/warm/*/pid; do
        [ -f "$p" ] || continue
        kill -KILL "$(cat "$p")" 2>/dev/null || continue # ended already
        wait_until 10 sh -c "! kill -0 $(cat "$p") 2>/dev/null" || fail "warm process $(cat "$p") did not end"
    done
    return 0
}

assert_eq() { [ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"; }

is_mounted() { grep -q " $1 fuse" /proc/mounts; }

[ -e /dev/fuse ] || skip "no /dev/fuse on this machine"
[ "$(id -u)" = 0 ] || skip "the integration tests mount with allow_other and a read-only store bind: run as root"
[ -x "$PACTOWNFS" ] || fail "$PACTOWNFS not built"

# the local wheelhouse, made once per build directory
WHEELHOUSE=$BUILD/wheelhouse
[ -f "$WHEELHOUSE/ptdemo_thready-1.0-py3-none-any.whl" ] || python3 "$SRC/tests/fixtures/make_wheelhouse.py" "$WHEELHOUSE"

UV_BIN=$(python3 -c 'import uv; print(uv.find_uv_bin())' 2>/dev/null || command -v uv || true)

printf '' > "$WORK/pactown.conf"
export PACTOWN_CONFIG=$WORK/pactown.conf
export PACTOWN_CACHE_DIR=$WORK/cache
export PACTOWN_MOUNTPOINT=$MNT
export PACTOWN_SANDBOX_ROOT=$WORK/sandboxes
export PACTOWN_FIND_LINKS=$WHEELHOUSE
export PACTOWN_NO_INDEX=yes
export PACTOWN_OFFLINE=yes
# an interpreter every user can run (the daemon mounts with allow_other and
# warns otherwise); tests that are about the interpreter set their own
[ -x /usr/bin/python3 ] && export PACTOWN_PYTHON=/usr/bin/python3
[ -n "$UV_BIN" ] && export PACTOWN_UV=$UV_BIN
mkdir -p "$MNT"

# stop_all: end the services started by pactown run (their process groups),
# the daemon, and every mount of this test (FUSE mount, store bind)
# EXTRA_PIDS: other processes a test started (servers holding ports): killed too
EXTRA_PIDS=
stop_all() {
    local p
    for p in $EXTRA_PIDS; do kill -KILL "$p" 2>/dev/null; done
    # services started by pactown run: end their process groups
    if [ -d "$WORK/cache/index" ] && [ -x "$PACTOWN" ]; then
        "$PACTOWN" ps --json 2>/dev/null | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["running"]:
        print(s["pid"])' 2>/dev/null | while read -r pid; do kill -KILL -- "-$pid" 2>/dev/null; done
    fi
    # warm processes (docs/WARM.md): init's children, they would outlive the test
    for p in "$WORK"/cache/warm/*/pid; do
        [ -f "$p" ] && kill -KILL "$(cat "$p")" 2>/dev/null
    done
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        fusermount3 -u "$MNT" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$DAEMON_PID" 2>/dev/null
    fi
    is_mounted "$MNT" && { fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT"; }
    grep -q " $WORK/cache/store " /proc/mounts && umount -l "$WORK/cache/store"
}

cleanup() {
    local rc=$?
    set +e
    stop_all
    chmod -R u+w "$WORK" 2>/dev/null
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT

# mount_start [pactownfs options...]: mount in the foreground (background job), wait until mounted
mount_start() {
    local before
    before=$(grep -c "ready at $MNT" "$DAEMON_LOG" 2>/dev/null || true)
    # PACTOWN_FUSE_OPTS: libfuse options for every daemon of the suite (tools/test runs it once with -s)
    # shellcheck disable=SC2086
    "$PACTOWNFS" -f ${PACTOWN_FUSE_OPTS:-} "$MNT" "$@" >>"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    wait_until 20 sh -c "[ \$(grep -c 'ready at $MNT' '$DAEMON_LOG') -gt ${before:-0} ] || ! kill -0 $DAEMON_PID" \
        || fail "pactownfs did not mount $MNT within 20 s"
    kill -0 "$DAEMON_PID" 2>/dev/null || fail "pactownfs exited at start-up"
    is_mounted "$MNT" || fail "pactownfs says ready but $MNT is not mounted"
}

# mount_stop: unmount and wait for the daemon to exit
mount_stop() {
    fusermount3 -u "$MNT" || fail "fusermount3 -u $MNT failed"
    local rc=0
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=
    [ "$rc" = 0 ] || fail "pactownfs exited with $rc after unmount"
}

# api_port_start: the start of a random range of 200 ports below the kernel's
# ephemeral ports (ip_local_port_range): a port handed out there can be
# taken by any outgoing connection between the API's bind test and the
# service's start (seen once in CI: "port ... is taken")
api_port_start() {
    local low
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "$low" -gt 10400 ] 2>/dev/null || low=32768
    echo $(( 10000 + RANDOM % (low - 200 - 10000) ))  # ..start+200 ends below low
}

# serve_start [pactown serve options...]: the runner API on $SOCK (default
# $WORK/api.sock), ports from PACTOWN_PORT_START (a random range of 200 unless
# set); waits until it listens. SERVE_PID: its pid (killed by the cleanup).
SOCK=$WORK/api.sock
SERVE_PID=
serve_start() {
    if [ -z "${PACTOWN_PORT_START:-}" ]; then
        PACTOWN_PORT_START=$(api_port_start)
        export PACTOWN_PORT_START PACTOWN_PORT_END=$(( PACTOWN_PORT_START + 200 ))
    fi
    local before
    before=$(grep -c 'listening on' "$WORK/serve.log" 2>/dev/null || true)
    "$PACTOWN" serve --socket "$SOCK" "$@" >>"$WORK/serve.log" 2>&1 &
    SERVE_PID=$!
    EXTRA_PIDS="$EXTRA_PIDS $SERVE_PID"
    wait_until 10 sh -c "[ \$(grep -c 'listening on' '$WORK/serve.log') -gt ${before:-0} ] || ! kill -0 $SERVE_PID" \
        || fail "pactown serve did not start within 10 s"
    kill -0 "$SERVE_PID" 2>/dev/null || fail "pactown serve exited at start: $(cat "$WORK/serve.log")"
}

# register REQ...: record a requirement set in the index; prints its key
register() { "$PACTOWN" hash --register "$@" | sed -n 's/^key //p'; }

stat_json() { python3 -c "import json,sys; print(json.load(open('$MNT/stats'))['$1'])"; }
# stat_is FIELD VALUE: the mount's stats say so (for wait_until)
stat_is() { [ "$(stat_json "$1")" = "$2" ]; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

http_status() { python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception as e:
    print("error", e)
PY
}

# write_readme FILE DEPS...: a markpact README of the ptdemo HTTP service
write_readme() {
    local file=$1; shift
    {
        echo "# ptdemo service"
        echo '```text markpact:deps python'
        printf '%s\n' "$@"
        echo '```'
        echo '```text markpact:file path=data/hello.txt'
        echo 'hello'
        echo '```'
        echo '```bash markpact:run'
        echo 'python -m ptdemo_app'
        echo '```'
    } >"$file"
}

# ---- an OCI registry and a second host (tests of venvs shared through a registry)

# registry_start [htpasswd FILE | token REALM CERT]: Debian's docker-registry (CNCF distribution)
# on a free loopback port, storage in $WORK/registry; REG_PORT, REG_PID set,
# REG_URL the repository pactown uses (http://127.0.0.1:PORT/pt/venvs).
# Called again, it starts the same storage on the same port.
REG_PID=
registry_start() {
    command -v docker-registry >/dev/null || skip "docker-registry is not installed (tools/setup installs it)"
    REG_PORT=${REG_PORT:-$(free_port)}
    REG_URL=http://127.0.0.1:$REG_PORT/pt/venvs
    mkdir -p "$WORK/registry"
    {
        echo "version: 0.1"
        echo "log: {level: warn, accesslog: {disabled: true}}"
        echo "storage: {filesystem: {rootdirectory: $WORK/registry}, delete: {enabled: true}}"
        echo "http: {addr: 127.0.0.1:$REG_PORT}"
        case ${1:-} in
        htpasswd) echo "auth: {htpasswd: {realm: pactown-test, path: $2}}" ;;
        token) echo "auth: {token: {realm: '$2', service: pactown-test, issuer: pactown-test, rootcertbundle: $3}}" ;;
        esac
    } > "$WORK/registry.yml"
    docker-registry serve "$WORK/registry.yml" >>"$WORK/registry.log" 2>&1 &
    REG_PID=$!
    EXTRA_PIDS="$EXTRA_PIDS $REG_PID"
    wait_until 20 sh -c "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$REG_PORT/v2/ | grep -qE '200|401'" \
        || fail "docker-registry did not answer on port $REG_PORT: $(tail -5 "$WORK/registry.log")"
}
registry_stop() {
    if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; fi
    REG_PID=
}

# host B: a second daemon with a cache of its own at the same path as
# host A's ($WORK/cache), in a mount namespace of its own where
# $WORK/hostb/cache is bound over it; its mount at $WORK/mntb. B_PID: the
# daemon. hostb CMD...: run CMD in host B's namespace (its pactown sees B).
B_PID=
B_LOG=$WORK/daemon-b.log
hostb_start() {
    mkdir -p "$WORK/hostb/cache" "$WORK/mntb"
    local before
    before=$(grep -c "ready at $WORK/mntb" "$B_LOG" 2>/dev/null || true)
    # A's mounts are copied into the new namespace: dropped there first, else
    # the copy of A's FUSE mount would keep A's connection alive
    # shellcheck disable=SC2016,SC2086
    unshare -m --propagation private -- sh -c 'umount -l "$1" 2>/dev/null; umount -l "$2/store" 2>/dev/null;
        mount --bind "$3" "$2" && shift 3 && exec "$@"' sh "$MNT" "$WORK/cache" "$WORK/hostb/cache" \
        "$PACTOWNFS" -f ${PACTOWN_FUSE_OPTS:-} "$WORK/mntb" "$@" >>"$B_LOG" 2>&1 &
    B_PID=$!
    EXTRA_PIDS="$EXTRA_PIDS $B_PID"
    wait_until 20 sh -c "[ \$(grep -c 'ready at $WORK/mntb' '$B_LOG') -gt ${before:-0} ] || ! kill -0 $B_PID" \
        || fail "host B's pactownfs did not mount within 20 s: $(tail -5 "$B_LOG")"
    kill -0 "$B_PID" 2>/dev/null || fail "host B's pactownfs exited at start-up: $(tail -5 "$B_LOG")"
}
hostb() { nsenter -t "$B_PID" -m -- env PACTOWN_MOUNTPOINT="$WORK/mntb" "$@"; }
hostb_stop() {
    [ -n "$B_PID" ] || return 0
    hostb fusermount3 -u "$WORK/mntb" 2>/dev/null
    wait_until 10 proc_gone "$B_PID" || kill -KILL "$B_PID" 2>/dev/null
    wait "$B_PID" 2>/dev/null || true
    B_PID=
}
