#!/usr/bin/env bash
# SIGTERM, SIGINT or an unmount while a build runs: the daemon stops the
# builder (its process group), answers the waiting lookup, records the build
# as interrupted (not failed, not left `building`), and is gone and unmounted
# within 2 s. The next daemon builds the venv on its next lookup.
. "$(dirname "$0")/lib.sh"
block_builds_on ptdemo-app
key=

for how in TERM INT unmount; do
    rm -f "$PT_BLOCK_MARK"
    mount_start -o uv="$BLOCKING_UV"
    [ -n "$key" ] || key=$(register ptdemo-app)
    stat -L "$MNT/by-deps/$key" >/dev/null 2>"$WORK/waiter.err" &
    waiter=$!
    wait_until 30 test -e "$PT_BLOCK_MARK" || fail "$how: the build did not start"
    wait_until 10 stat_is waiting 1 || fail "$how: the lookup is not waiting"
    if [ "$how" = unmount ]; then
        # a process inside the mount keeps it busy: end the waiter first
        # (the build goes on without it), then unmount
        kill -KILL "$waiter"
        wait_until 1 proc_gone "$waiter" || fail "unmount: the killed waiter is still there"
        assert_eq "$(stat_json building)" 1 "unmount: the build without waiters"
        t0=$(date +%s%N)
        fusermount3 -u "$MNT" || fail "fusermount3 -u during a build"
    else
        t0=$(date +%s%N)
        kill -"$how" "$DAEMON_PID"
        wait_until 2 proc_gone "$waiter" || fail "$how: the waiting lookup was not answered"
        wait "$waiter" && fail "$how: the waiting lookup succeeded without a venv"
        grep -q "Transport endpoint is not connected" "$WORK/waiter.err" \
            || fail "$how: the waiter got: $(cat "$WORK/waiter.err")"
    fi
    wait_until 2 proc_gone "$DAEMON_PID" || fail "$how: pactownfs still runs 2 s after the stop"
    wait "$DAEMON_PID" || fail "$how: pactownfs exited with $? after the stop"
    DAEMON_PID=
    say "$how: gone in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    is_mounted "$MNT" && fail "$how: $MNT is still mounted"
    pgrep -f "[b]locking-uv pip" >/dev/null && fail "$how: the installer step survived the stop"
    pgrep -f "[p]actown-build --store $WORK/cache/store" >/dev/null && fail "$how: the builder survived the stop"
    grep -q "stopped the build of $key" "$DAEMON_LOG" || fail "$how: the daemon did not say it stopped the build"
    grep -q "build interrupted: the daemon is stopping" "$WORK/cache/logs/$key.log" \
        || fail "$how: the build log does not say the build was interrupted"
    state=$("$PACTOWN" cache ls --json | python3 -c "import json,sys; print([e['state'] for e in json.load(sys.stdin) if e['key']=='$key'][0])")
    assert_eq "$state" none "$how: the entry after the stop"
done
grep -q "was being built when the daemon stopped" "$DAEMON_LOG" && fail "a build was left 'building' in the index"

# a signal right after start-up, 20 times: the stop never loses the main
# thread's wake-up (once it did, between its check and its wait)
for i in $(seq 20); do
    mount_start
    kill -INT "$DAEMON_PID"
    wait_until 3 proc_gone "$DAEMON_PID" || fail "round $i: pactownfs still runs 3 s after SIGINT right after start"
    wait "$DAEMON_PID" || fail "round $i: pactownfs exited with $?"
    DAEMON_PID=
done

# a daemon without the blocking installer builds it on the next lookup
mount_start -o evict_grace_ms=1500 -o min_idle_seconds=0
"$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app' || fail "the venv did not build after the stops"
assert_eq "$(stat_json build_failures)" 0 "interrupted builds counted as failures"

# SIGTERM during an eviction, with a lookup waiting on it: the eviction's
# kernel notifications still get through (the stop ends it while requests are
# answered), the waiter is answered, the daemon is gone
"$PACTOWN" cache rm "$key" >/dev/null 2>&1 &
rm_pid=$!
wait_until 10 stat_is entries 0 || fail "the eviction did not commit"
stat -L "$MNT/by-deps/$key" >/dev/null 2>&1 &
waiter=$!
wait_until 10 stat_is waiting 1 || fail "the lookup does not wait on the eviction"
kill -TERM "$DAEMON_PID"
wait_until 5 proc_gone "$DAEMON_PID" || fail "pactownfs still runs 5 s after SIGTERM during an eviction"
wait_until 2 proc_gone "$waiter" || fail "the lookup waiting on the eviction was not answered"
wait "$rm_pid" || fail "pactown cache rm did not finish"
DAEMON_PID=
is_mounted "$MNT" && fail "still mounted after SIGTERM during an eviction"
pass
