#!/usr/bin/env bash
# While a build runs, other requests are served. kill -9 of the daemon in the
# middle of that build, then a new mount: the stale mount is cleared, the
# builder is gone, the half-built venv is removed and never served, and the
# next lookup builds it again.
. "$(dirname "$0")/lib.sh"
[ -n "$UV_BIN" ] || skip "uv is not installed"
export PT_REAL_UV=$UV_BIN PT_BLOCK_MARK=$WORK/blocked PT_BLOCK_ON=ptdemo-app
mount_start -o uv="$SRC/tests/fixtures/blocking-uv"

other=$(register ptdemo-extra)
"$MNT/by-deps/$other/bin/python" -c 'import ptdemo_extra' || fail "building the other key"
key=$(register ptdemo-app)
( stat "$MNT/by-deps/$key" >/dev/null 2>&1 || true ) &
lookup=$!
wait_until 30 test -e "$PT_BLOCK_MARK" || fail "the build did not start"
[ -d "$WORK/cache/store/$key" ] || fail "no half-built venv to test with"
# served meanwhile: a third key builds, listings and stats answer
third=$(register "ptdemo-extra; python_version >= \"3\"")
"$MNT/by-deps/$third/bin/python" -c 'import ptdemo_extra' || fail "a build while another one runs"
assert_eq "$(ls "$MNT/by-deps" | sort | tr '\n' ' ')" "$(printf '%s\n' "$other" "$third" | sort | tr '\n' ' ')" "by-deps during a build"
assert_eq "$(stat_json building)" 1 "stats during a build"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=
wait "$lookup"
# ([p] keeps pgrep from matching the shell that runs it)
wait_until 10 sh -c "! pgrep -f '[p]actown-build --store $WORK/cache/store'" || fail "the builder survived the daemon"
wait_until 10 sh -c "! pgrep -f '[b]locking-uv pip'" || fail "the installer step survived the daemon"

mount_start
grep -q "stale mount" "$DAEMON_LOG" || fail "the new daemon did not report the stale mount"
grep -q "was being built when the daemon stopped" "$DAEMON_LOG" || fail "the new daemon did not report the interrupted build"
[ ! -e "$WORK/cache/store/$key" ] || fail "the half-built venv is still in the store"
ls "$MNT/by-deps" | grep -qx "$key" && fail "by-deps lists a venv that is not built"
"$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app' || fail "the key did not build again after the crash"
ls "$MNT/by-deps" | grep -qx "$key" || fail "by-deps does not list the rebuilt key"
pass
