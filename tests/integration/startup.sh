#!/usr/bin/env bash
# Start-up and the CLI's view of it:
#  - `pactownfs NEW/DIR` creates a missing mountpoint (libfuse would say "bad
#    mount point");
#  - two daemons with different cache_dirs started together on one mountpoint
#    (cvmfs#3392): one mounts, the other exits 1 naming the winner's pid and
#    cache_dir; one FUSE mount there;
#  - a CLI with another cache_dir is told so for a key both caches know (it
#    used to replay the other cache's old log silently);
#  - a CLI run by a user who cannot open the index is told whose it is and what to do.
. "$(dirname "$0")/lib.sh"

# a missing mountpoint is created
NEWMNT=$WORK/new/deep/mnt
"$PACTOWNFS" -f "$NEWMNT" >"$WORK/new.log" 2>&1 &
newpid=$!
wait_until 20 grep -q "ready at $NEWMNT" "$WORK/new.log" || fail "pactownfs did not mount a new mountpoint: $(cat "$WORK/new.log")"
is_mounted "$NEWMNT" || fail "$NEWMNT is not mounted"
fusermount3 -u "$NEWMNT"
wait "$newpid" || fail "pactownfs on the new mountpoint exited with $?"

# two daemons together on one mountpoint
"$PACTOWNFS" -f "$MNT" -o cache_dir="$WORK/cache-a" >"$WORK/a.log" 2>&1 &
a=$!
"$PACTOWNFS" -f "$MNT" -o cache_dir="$WORK/cache-b" >"$WORK/b.log" 2>&1 &
b=$!
wait_until 20 sh -c "grep -q 'ready at' '$WORK/a.log' '$WORK/b.log' && { ! kill -0 $a || ! kill -0 $b; }" 2>/dev/null \
    || fail "expected one daemon mounted and one gone: a=$(cat "$WORK/a.log") b=$(cat "$WORK/b.log")"
if grep -q "ready at" "$WORK/a.log"; then win=$a winlog=$WORK/a.log winc=$WORK/cache-a lose=$b loselog=$WORK/b.log
else win=$b winlog=$WORK/b.log winc=$WORK/cache-b lose=$a loselog=$WORK/a.log; fi
DAEMON_PID=$win DAEMON_LOG=$winlog EXTRA_DAEMON_LOGS="$WORK/new.log $loselog"
rc=0; wait "$lose" || rc=$?
assert_eq "$rc" 1 "exit code of the daemon that lost the mountpoint"
grep -q "is taken by another pactownfs (pid $win, cache_dir $winc)" "$loselog" \
    || fail "the loser does not name the winner: $(cat "$loselog")"
assert_eq "$(grep -c " $MNT fuse" /proc/mounts)" 1 "FUSE mounts at $MNT"
grep -q "^pactownfs@$winc $MNT fuse.pactown " /proc/mounts || fail "the mount does not name its cache: $(grep " $MNT " /proc/mounts)"

# a CLI with the other cache_dir, for a key both caches know
other=$([ "$winc" = "$WORK/cache-a" ] && echo "$WORK/cache-b" || echo "$WORK/cache-a")
PACTOWN_CACHE_DIR=$winc "$PACTOWN" cache prewarm ptdemo-extra >/dev/null 2>&1 || fail "prewarm with the daemon's cache_dir"
PACTOWN_CACHE_DIR=$other "$PACTOWN" hash --register ptdemo-extra >/dev/null || fail "register in the other cache"
rc=0
PACTOWN_CACHE_DIR=$other "$PACTOWN" cache prewarm ptdemo-extra >"$WORK/mismatch.out" 2>&1 || rc=$?
assert_eq "$rc" 1 "exit code of a CLI with another cache_dir"
grep -q "serves cache_dir $winc, but this command uses cache_dir $other" "$WORK/mismatch.out" \
    || fail "mismatch message: $(cat "$WORK/mismatch.out")"

# an unprivileged CLI: the index is root's
chmod 755 "$WORK"
rc=0
PACTOWN_CACHE_DIR=$winc setpriv --reuid=65534 --regid=65534 --clear-groups "$PACTOWN" cache ls >"$WORK/nobody.out" 2>&1 || rc=$?
assert_eq "$rc" 1 "exit code of an unprivileged cache ls"
grep -q "cannot open the index $winc/index: Permission denied. The cache belongs to root: run this command as that user" "$WORK/nobody.out" \
    || fail "unprivileged message: $(cat "$WORK/nobody.out")"
pass
