# lib_limits.sh — helpers of the limits tests (sourced after tests/integration/lib.sh).
#
# expect_exit CODE PATTERN CMD...   CMD exits CODE and its output matches PATTERN (grep -E, bytes)
# measure OUT CMD...                run CMD under /usr/bin/time -v; sets M_RC, M_RSS_KB, M_SECS;
#                                   CMD's stdout+stderr go to OUT
# tmpfs_cache SIZE                  a tmpfs of SIZE at $WORK/cache (before mount_start); the EXIT
#                                   trap stops services and the daemon first, then unmounts it
# daemon_alive                      the daemon still runs and answers on the mount

[ -n "${WORK:-}" ] || { echo "lib_limits.sh: source tests/integration/lib.sh first" >&2; exit 1; }

expect_exit() {
    local want=$1 pattern=$2 rc=0; shift 2
    "$@" >"$WORK/out" 2>&1 || rc=$?
    [ "$rc" = "$want" ] || fail "$(printf '%q ' "$@" | cut -c1-200): exit $rc, expected $want: $(head -c 2000 "$WORK/out")"
    LC_ALL=C grep -qE -- "$pattern" "$WORK/out" || fail "$(printf '%q ' "$@" | cut -c1-200): message does not match '$pattern': $(head -c 2000 "$WORK/out")"
}

TIME_BIN=/usr/bin/time
ensure_time() {
    [ -x "$TIME_BIN" ] && "$TIME_BIN" -v true >/dev/null 2>&1 && return 0
    command -v apt-get >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1
    [ -x "$TIME_BIN" ] || skip "/usr/bin/time (GNU time) is not installed"
}

measure() {
    local out=$1; shift
    M_RC=0
    "$TIME_BIN" -v -o "$WORK/time.txt" "$@" >"$out" 2>&1 || M_RC=$?
    M_RSS_KB=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$WORK/time.txt")
    M_SECS=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$WORK/time.txt")
    # GNU time reports "Command exited with non-zero status N" and returns N itself
    [ -n "$M_RSS_KB" ] || fail "no figures from /usr/bin/time: $(cat "$WORK/time.txt")"
}

daemon_alive() {
    [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null || fail "the daemon is gone"
    is_mounted "$MNT" || fail "$MNT is no longer mounted"
    stat_json entries >/dev/null || fail "the mount does not answer (stats)"
    ls "$MNT/by-deps" >/dev/null || fail "the mount does not answer (by-deps)"
}

LIMITS_TMPFS=
tmpfs_cache() {
    mkdir -p "$WORK/cache"
    mount -t tmpfs -o "size=$1,mode=0755" pt-limits "$WORK/cache" || skip "cannot mount a tmpfs"
    LIMITS_TMPFS=$WORK/cache
}

limits_cleanup() {
    local rc=$?
    set +e
    if [ -n "$LIMITS_TMPFS" ]; then
        # what lib.sh's cleanup does, in the order a filesystem under $WORK needs:
        # services and the daemon first, then the store bind, then the tmpfs
        stop_all
        grep -q " $LIMITS_TMPFS tmpfs " /proc/mounts && { umount "$LIMITS_TMPFS" 2>/dev/null || umount -l "$LIMITS_TMPFS"; }
    fi
    (exit "$rc")
    cleanup
}
trap limits_cleanup EXIT

# figures for the report: one "FIGURE name: value" line each
figure() { printf 'FIGURE %s: %s\n' "$T_NAME" "$*"; }
