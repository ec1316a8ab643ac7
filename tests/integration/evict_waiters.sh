#!/usr/bin/env bash
# More waiters than worker threads during an eviction of the same key. With
# two worker threads, eight processes follow by-deps/KEY while `pactown cache
# rm KEY` holds the key's claim (evict_grace_ms=4000 keeps it held after the
# kernel was told to drop the entry): the eviction finishes — its kernel
# notifications are not starved by waiting requests —, the tree is served
# meanwhile, and the eight get the venv from one rebuild.
. "$(dirname "$0")/lib.sh"
block_builds_on ptdemo-app
mount_start -o uv="$BLOCKING_UV" -o max_threads=2 -o evict_grace_ms=4000 -o min_idle_seconds=0

key=$(register ptdemo-app)
other=$(register ptdemo-extra)
release_builds
"$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app' || fail "the first build"
# the rebuild will block until released again
rm -f "$PT_BLOCK_UNTIL" "$PT_BLOCK_MARK"

"$PACTOWN" cache rm "$key" >"$WORK/rm.out" 2>&1 &
rm_pid=$!
wait_until 10 stat_is entries 0 || fail "the eviction did not commit"
pids=()
for i in $(seq 8); do
    "$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app' 2>>"$WORK/readers.err" &
    pids+=($!)
done
wait_until 20 stat_is waiting 8 || fail "8 waiters expected, saw $(stat_json waiting)"
kill -0 "$rm_pid" 2>/dev/null || fail "the eviction ended before the 8 waited (raise evict_grace_ms)"
say "8 requests wait on the eviction, with 2 worker threads"
# served meanwhile
assert_eq "$(ls "$MNT/by-deps")" "" "by-deps during the eviction"
"$MNT/by-deps/$other/bin/python" -c 'import ptdemo_extra' || fail "another key during the eviction"

wait "$rm_pid" || fail "pactown cache rm failed: $(cat "$WORK/rm.out")"
wait_until 30 test -e "$PT_BLOCK_MARK" || fail "the waiters did not start the rebuild"
assert_eq "$(stat_json waiting)" 8 "waiters moved from the eviction to the rebuild"
release_builds
for p in "${pids[@]}"; do wait "$p" || fail "a waiter did not get the venv: $(cat "$WORK/readers.err")"; done
assert_eq "$(stat_json evictions)" 1 "evictions"
assert_eq "$(grep -c '^pactown-build: building' "$MNT/logs/$key.log")" 1 "builder runs of the rebuild (the log is per build)"
assert_eq "$(stat_json builds)" 3 "builds: first, other, one rebuild"
pass
