#!/usr/bin/env bash
# Eight processes that follow one registered, unbuilt key at the same moment
# cause exactly one build; all eight get the venv. The build is held until
# all eight wait for it (the mount's stats count waiting requests), so the
# eight are really concurrent. Other keys are served while a build runs.
. "$(dirname "$0")/lib.sh"
block_builds_on ptdemo-app
mount_start -o uv="$BLOCKING_UV"

key=$(register ptdemo-app "ptdemo-extra; python_version >= \"3\"")
other=$(register ptdemo-extra)
pids=()
for i in $(seq 8); do
    "$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app' 2>>"$WORK/lookups.err" &
    pids+=($!)
done
wait_until 30 stat_is waiting 8 || fail "8 lookups should wait for the build, stats say $(stat_json waiting)"
"$MNT/by-deps/$other/bin/python" -c 'import ptdemo_extra' || fail "the other key while a build runs"
release_builds
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent lookup failed: $(cat "$WORK/lookups.err")"; done
assert_eq "$(stat_json builds)" 2 "builds after 8 concurrent lookups of one key and one of another"
assert_eq "$(grep -c '^pactown-build: building' "$MNT/logs/$key.log")" 1 "builder runs in the log"
assert_eq "$(stat_json waiting)" 0 "waiting after the build"
pass
