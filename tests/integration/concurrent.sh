#!/usr/bin/env bash
# Eight processes that look up one registered, unbuilt key at the same moment
# cause exactly one build; all eight get the venv. Other keys are served
# while a build runs.
. "$(dirname "$0")/lib.sh"
mount_start

key=$(register ptdemo-app "ptdemo-extra; python_version >= \"3\"")
other=$(register ptdemo-extra)
go=$WORK/go
mkfifo "$go"
pids=()
for i in $(seq 8); do
    ( cat "$go" >/dev/null; "$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app' ) 2>>"$WORK/lookups.err" &
    pids+=($!)
done
# release all eight at once: each reader gets EOF when the writer closes
sleep 0.2 &  # give the readers a moment to open the fifo; opening blocks until they do
wait $!
exec 3>"$go"; exec 3>&-
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent lookup failed: $(cat "$WORK/lookups.err")"; done
assert_eq "$(stat_json builds)" 1 "builds after 8 concurrent lookups"
assert_eq "$(grep -c '^pactown-build: building' "$MNT/logs/$key.log")" 1 "builder runs in the log"
"$MNT/by-deps/$other/bin/python" -c 'import ptdemo_extra' || fail "the other key"
assert_eq "$(stat_json builds)" 2 "builds after the second key"
pass
