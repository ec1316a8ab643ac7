#!/usr/bin/env bash
# The mounted tree: fixed names, stats as JSON, read-only everywhere,
# unknown and malformed keys are ENOENT, a registered key builds on lookup
# and then lists in by-deps, its venv imports its packages.
. "$(dirname "$0")/lib.sh"
mount_start

assert_eq "$(ls "$MNT" | tr '\n' ' ')" "by-deps by-service logs stats " "root listing"
python3 -c "import json; d = json.load(open('$MNT/stats')); assert d['entries'] == 0 and d['misses'] == 0, d" \
    || fail "stats is not the JSON of an empty cache"

# writes are EROFS
out=$(touch "$MNT/by-deps/x" 2>&1) && fail "touch by-deps/x succeeded"
case "$out" in *"Read-only file system"*) ;; *) fail "touch by-deps/x: expected EROFS, got: $out" ;; esac
out=$(mkdir "$MNT/by-service/y" 2>&1) && fail "mkdir succeeded"
case "$out" in *"Read-only file system"*) ;; *) fail "mkdir: expected EROFS, got: $out" ;; esac

# unknown and malformed keys
for name in 0123456789abcdef0123456789abcdef 0123456789ABCDEF0123456789ABCDEF zz ../x "$(printf 'a%.0s' $(seq 40))"; do
    out=$(stat "$MNT/by-deps/$name" 2>&1) && fail "by-deps/$name exists"
    case "$out" in *"No such file or directory"*) ;; *) fail "by-deps/$name: expected ENOENT, got: $out" ;; esac
done

key=$(register ptdemo-app)
[ ${#key} = 32 ] || fail "pactown hash --register printed no key"
[ -z "$(ls "$MNT/by-deps")" ] || fail "an unbuilt key is listed in by-deps"
"$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app, ptdemo_core; assert ptdemo_core.VERSION == "2.0"' \
    || fail "the venv of ptdemo-app does not import ptdemo_app with ptdemo-core 2.0"
assert_eq "$(ls "$MNT/by-deps")" "$key" "by-deps listing"
assert_eq "$(readlink "$MNT/by-deps/$key")" "$WORK/cache/store/$key" "symlink target"
# readdir's d_ino is lookup's st_ino (find, du and rsync pair them)
assert_eq "$(ls -i "$MNT/by-deps" | awk '{print $1}')" "$(stat -c %i "$MNT/by-deps/$key")" "readdir d_ino vs stat st_ino"
assert_eq "$(ls -i "$MNT/logs" | awk '{print $1}')" "$(stat -c %i "$MNT/logs/$key.log")" "logs: readdir d_ino vs st_ino"
assert_eq "$(ls "$MNT/logs")" "$key.log" "logs listing"
grep -q "pactown: $key ready" "$MNT/logs/$key.log" || fail "the build log does not end with 'ready'"
assert_eq "$(stat_json entries)" 1 "stats entries"
assert_eq "$(stat_json builds)" 1 "stats builds"
assert_eq "$(stat_json misses)" 1 "stats misses"
python3 -c "import json; d = json.load(open('$MNT/stats')); assert d['size'] > 1000, d" || fail "stats bytes"

# the store is read-only for services, also through the real path
out=$("$MNT/by-deps/$key/bin/python" -c "
import sysconfig, os
p = os.path.join(sysconfig.get_paths()['purelib'], 'evil.py')
open(p, 'w')" 2>&1) && fail "a service could write into site-packages"
case "$out" in *"Read-only file system"*|*"Permission denied"*) ;; *) fail "write into site-packages: $out" ;; esac
touch "$WORK/cache/store/$key/x" 2>/dev/null && fail "the store path is writable"

ls "$WORK/cache/store/$key"/lib/python3*/site-packages/ptdemo_core/__pycache__/*.pyc >/dev/null 2>&1 \
    || fail "no bytecode compiled for ptdemo_core"

mount_stop
is_mounted "$MNT" && fail "still mounted after unmount"
grep -q " $WORK/cache/store " /proc/mounts && fail "the store's read-only bind is still mounted after unmount"

# SIGTERM and SIGINT unmount cleanly, exit 0, and the index keeps what was built
for sig in TERM INT; do
    mount_start
    kill -"$sig" "$DAEMON_PID"
    rc=0; wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=
    assert_eq "$rc" 0 "exit status of pactownfs after SIG$sig"
    is_mounted "$MNT" && fail "still mounted after SIG$sig"
    grep -q " $WORK/cache/store " /proc/mounts && fail "the store bind is still mounted after SIG$sig"
done
# a busy mount (a process has its cwd there) is unmounted lazily, with a message
mount_start
( cd "$MNT/by-deps" && exec sleep 300 ) &
sleeper=$!
wait_until 10 sh -c "readlink /proc/$sleeper/cwd | grep -q by-deps" || fail "the busy process did not start"
kill -TERM "$DAEMON_PID"
rc=0; wait "$DAEMON_PID" || rc=$?
DAEMON_PID=
assert_eq "$rc" 0 "exit status of pactownfs after SIGTERM on a busy mount"
grep -q "is busy" "$DAEMON_LOG" || fail "no message about the busy mount"
is_mounted "$MNT" && fail "the busy mount was not detached"
kill "$sleeper"; wait "$sleeper" 2>/dev/null || true

mount_start
assert_eq "$(ls "$MNT/by-deps")" "$key" "by-deps after two restarts"
assert_eq "$(stat_json builds)" 1 "builds after two restarts"
pass
