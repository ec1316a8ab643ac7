#!/usr/bin/env bash
# Waiting for a build holds no worker thread, and a waiter can be killed.
# Six processes wait in readlink for one blocked build while pactownfs runs
# with two worker threads: everything else is still answered. SIGKILL of a
# waiter ends it within a second (the daemon answers the FUSE interrupt with
# EINTR), the build goes on, and the other five get the venv from one build.
. "$(dirname "$0")/lib.sh"
block_builds_on ptdemo-app
mount_start -o uv="$BLOCKING_UV" -o max_threads=2

key=$(register ptdemo-app)
other=$(register ptdemo-extra)
pids=()
for i in $(seq 6); do
    stat -L "$MNT/by-deps/$key" >/dev/null 2>>"$WORK/waiters.err" &
    pids+=($!)
done
wait_until 30 test -e "$PT_BLOCK_MARK" || fail "the build did not start"
wait_until 20 stat_is waiting 6 || fail "6 waiters expected in stats, saw $(stat_json waiting)"

# more waiters than worker threads: the rest of the tree is served
[ -z "$(ls "$MNT/by-deps")" ] || fail "by-deps lists a venv that is not built"
assert_eq "$(stat_json building)" 1 "builds running"
"$MNT/by-deps/$other/bin/python" -c 'import ptdemo_extra' || fail "another key did not build while six waited"

victim=${pids[0]}
t0=$(date +%s%N)
kill -KILL "$victim"
wait_until 1 proc_gone "$victim" || fail "a waiter killed during a build is still there after 1 s"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
say "killed waiter gone in ${ms} ms"
wait_until 5 stat_is waiting 5 || fail "the killed waiter is still counted: $(stat_json waiting)"
assert_eq "$(stat_json building)" 1 "the build goes on after a waiter was killed"
kill -TERM "${pids[1]}"
wait_until 1 proc_gone "${pids[1]}" || fail "a waiter sent SIGTERM during a build is still there after 1 s"

release_builds
for p in "${pids[@]:2}"; do wait "$p" || fail "a waiter did not get the venv: $(cat "$WORK/waiters.err")"; done
"$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app' || fail "the venv after the build"
assert_eq "$(stat_json builds)" 2 "builds (one per key)"
assert_eq "$(grep -c '^pactown-build: building' "$MNT/logs/$key.log")" 1 "builder runs for the waited-on key"
assert_eq "$(stat_json waiting)" 0 "waiters after the build"
pass
