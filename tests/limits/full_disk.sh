#!/usr/bin/env bash
# A full disk under the cache: cache_dir (index, store, logs, tmp) on a 3 MiB
# tmpfs. A small venv fits; a set with a 5 MiB wheel does not. The build that
# runs out of space fails with EIO and a log that says so, leaves no entry
# ready and nothing of its own in the store (the space is back), the daemon
# keeps serving what is built and builds what still fits; `pactown run` on a
# README with that set exits 4 and points at the log.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib_limits.sh"

TMPFS_SIZE=${PT_FULL_DISK_SIZE:-3m}

# a wheelhouse with the usual wheels and one big incompressible one
WHEELS=$WORK/wheels
mkdir -p "$WHEELS"
cp "$WHEELHOUSE"/*.whl "$WHEELS/"
python3 "$SRC/tests/fixtures/make_big_wheel.py" "$WHEELS" 5 >/dev/null
export PACTOWN_FIND_LINKS=$WHEELS

tmpfs_cache "$TMPFS_SIZE"
# failure_ttl=0: section 5 retries a failed key once there is room again
# the build log cannot be written on a full disk: the daemon keeps the reason in its own log (expected)
EXPECT_DAEMON="build log unwritable: No space left on device"
mount_start -o failure_ttl=0

used() { df --output=used -B1 "$WORK/cache" | tail -n 1 | tr -d ' '; }
state_of() { "$PACTOWN" cache ls --json | python3 -c "
import json, sys
print(next((e['state'] for e in json.load(sys.stdin) if e['key'] == '$1'), 'absent'))"; }
store_clean() {
    # nothing of key $1 (nor a trash directory of a removal) in the store
    [ ! -e "$WORK/cache/store/$1" ] || return 1
    ! ls -A "$WORK/cache/store" | grep -q '^\.trash-' || return 1
}

# 1. a small venv fits
small=$(register ptdemo-core==1.0)
"$MNT/by-deps/$small/bin/python" -c 'import ptdemo_core; assert ptdemo_core.VERSION == "1.0"' \
    || fail "the small venv did not build on a $TMPFS_SIZE cache: $(tail -n 20 "$WORK/cache/logs/$small.log")"
assert_eq "$(state_of "$small")" ready "state of the small venv"
before=$(used)
total=$(df --output=size -B1 "$WORK/cache" | tail -n 1 | tr -d ' ')
figure "tmpfs $total bytes; used after the small venv: $before"

# 2. the big set runs out of space: EIO, a log that says why, nothing left behind
big=$(register ptdemo-big)
t0=$(date +%s%N)
out=$(stat "$MNT/by-deps/$big/bin/python" 2>&1) && fail "the big venv built on a $TMPFS_SIZE cache"
case "$out" in *"Input/output error"*) ;; *) fail "expected EIO for the big set, got: $out" ;; esac
figure "failed build took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
log=$WORK/cache/logs/$big.log
grep -qiE "No space left on device|os error 28|ENOSPC|disk quota|out of space" "$log" \
    || fail "the build log does not say the disk is full: $(tail -n 30 "$log")"
figure "log says: ...$(grep -m1 -oiE ".{0,60}(No space left on device|os error 28).{0,30}" "$log")"
grep -q "FAILED" "$log" || fail "the build log does not say FAILED: $(tail -n 30 "$log")"
assert_eq "$(state_of "$big")" failed "state of the big set"
"$PACTOWN" cache ls --json | python3 -c "
import json, sys
ready = sorted(e['key'] for e in json.load(sys.stdin) if e['state'] == 'ready')
assert ready == ['$small'], ready" || fail "cache ls --json: something other than the small venv is ready"
store_clean "$big" || fail "the failed build left something in the store: $(ls -A "$WORK/cache/store")"
after=$(used)
figure "used after the failed build: $after (before: $before, delta $(( after - before )))"
# the log of the failed build is the only thing that may have grown
slack=$(( $(stat -c %s "$log") + 64 * 1024 ))
[ "$(( after - before ))" -le "$slack" ] || fail "space not given back: used $before before, $after after the failed build"

# 3. the daemon keeps serving: the built venv in a new process, stats, and a new small build
daemon_alive
"$MNT/by-deps/$small/bin/python" -c 'import ptdemo_core' || fail "the small venv no longer imports after the failure"
extra=$(register ptdemo-extra)
"$MNT/by-deps/$extra/bin/python" -c 'import ptdemo_extra' \
    || fail "a small build after the failure: $(tail -n 20 "$WORK/cache/logs/$extra.log")"
assert_eq "$(stat_json failed)" 1 "failed entries"
assert_eq "$(stat_json entries)" 2 "ready entries (stats)"

# 4. pactown run on a README with a set that does not fit: exit 4, a message, space back
before=$(used)
write_readme "$WORK/big.md" ptdemo-app ptdemo-big
expect_exit 4 "building the venv [0-9a-f]{32} failed; the build log is .*/logs/[0-9a-f]{32}\.log" \
    "$PACTOWN" run "$WORK/big.md" --service-id big --skip-health-check
runkey=$(grep -oE 'logs/[0-9a-f]{32}\.log' "$WORK/out" | head -n 1 | sed 's,logs/,,; s,\.log,,')
[ -n "$runkey" ] && [ "$runkey" != "$big" ] || fail "pactown run did not build a new set: $(cat "$WORK/out")"
grep -qiE "No space left on device|os error 28" "$WORK/cache/logs/$runkey.log" \
    || fail "the run's build log does not say the disk is full"
assert_eq "$(state_of "$runkey")" failed "state of the run's set"
store_clean "$runkey" || fail "the failed run left something in the store"
after=$(used)
slack=$(( $(stat -c %s "$WORK/cache/logs/$runkey.log") + 64 * 1024 ))
[ "$(( after - before ))" -le "$slack" ] || fail "space not given back after the run: $before -> $after"
"$MNT/by-deps/$small/bin/python" -c 'import ptdemo_core' || fail "the small venv after the failed run"
daemon_alive

# 5. the cache is already full when a build starts (not even its log can be
# written): EIO, the reason in the daemon's log, and the build succeeds once
# there is room again (an ordinary failure otherwise: remembered for failure_ttl)
pending=$(register ptdemo-core==2.0)
dd if=/dev/zero of="$WORK/cache/filler" bs=64k 2>/dev/null || true
[ "$(df --output=avail -B1 "$WORK/cache" | tail -n 1 | tr -d ' ')" = 0 ] || fail "could not fill the cache filesystem"
out=$(stat "$MNT/by-deps/$pending/bin/python" 2>&1) && fail "a build succeeded on a full cache"
case "$out" in *"Input/output error"*) ;; *) fail "expected EIO on a full cache, got: $out" ;; esac
grep -q "build log unwritable: No space left on device" "$DAEMON_LOG" \
    || fail "the daemon's log does not say why the build on a full cache failed"
"$MNT/by-deps/$small/bin/python" -c 'import ptdemo_core' || fail "the small venv while the cache is full"
daemon_alive
[ "$(state_of "$pending")" != ready ] || fail "a build on a full cache is marked ready"
rm -f "$WORK/cache/filler"
"$MNT/by-deps/$pending/bin/python" -c 'import ptdemo_core; assert ptdemo_core.VERSION == "2.0"' \
    || fail "the build did not succeed once there was room again: $(tail -n 20 "$WORK/cache/logs/$pending.log")"
assert_eq "$(state_of "$pending")" ready "state after the retry"
pass
