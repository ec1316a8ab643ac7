#!/usr/bin/env bash
# The interpreter a venv is built with, checked on every use.
#  - uv#12000: python=/path/link re-pointed to another version gives the new
#    key in the CLI and builds with it in the running daemon; a set
#    registered for the old one is refused with a message that says the
#    interpreter changed. The same for a binary upgraded in place.
#  - uv#1640: a venv whose base interpreter moved away is never served: the
#    CLI has the daemon evict it and it is built again; a daemon that finds
#    one at a lookup rebuilds it. Both say so in a log line.
#  - one resolution: a CLI whose PATH finds another python3 gets the key of
#    the daemon's python3; the daemon warns when other users cannot run it.
. "$(dirname "$0")/lib.sh"
A=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
B=/usr/bin/python3.11
[ -x "$B" ] || skip "needs a second interpreter at $B"
va=$("$A" -c 'import platform; print(platform.python_version())')
vb=$("$B" -c 'import platform; print(platform.python_version())')
[ "$va" != "$vb" ] || skip "needs two interpreters of different versions ($A, $B)"
EXPECT_DAEMON='is not executable by other users|its last build failed for a cause of the environment'
chmod 755 "$WORK"   # so that the interpreters of this test are executable by every user
py_of() { "$MNT/by-deps/$1/bin/python" -c 'import platform; print(platform.python_version())'; }
key_python() { "$PACTOWN" hash "$@" | sed -n 2p; }

# --- a link re-pointed to another version, the daemon running ---
mkdir -p "$WORK/py"
ln -s "$B" "$WORK/py/python"
export PACTOWN_PYTHON=$WORK/py/python
mount_start
k1=$(register ptdemo-core)
assert_eq "$(py_of "$k1")" "$vb" "the venv's interpreter before the link moved"
pending=$(register ptdemo-extra)       # registered for $vb, not built
ln -sfn "$A" "$WORK/py/python"
assert_eq "$(key_python ptdemo-core)" "python cpython $va linux-x86_64" "the CLI's key after the link moved"
k2=$(register ptdemo-core)
[ "$k2" != "$k1" ] || fail "the key did not change with the interpreter"
assert_eq "$(py_of "$k2")" "$va" "the running daemon builds with the new interpreter"
stat -L "$MNT/by-deps/$pending" >/dev/null 2>&1 && fail "a set registered for the old interpreter was built"
grep -q "was registered for 'python cpython $vb linux-x86_64', but the interpreter the setting \`python\` ($WORK/py/python) finds now is 'python cpython $va linux-x86_64'" \
    "$MNT/logs/$pending.log" || fail "the refusal does not say the interpreter changed: $(tail -3 "$MNT/logs/$pending.log")"
grep -q "python $WORK/py/python is now $A" "$DAEMON_LOG" || fail "the daemon did not say the interpreter changed"
assert_eq "$(py_of "$k1")" "$vb" "the venv built for the old interpreter is still served"

# --- a binary upgraded in place ---
mkdir -p "$WORK/inplace"
cp "$B" "$WORK/inplace/python3.11"
export PACTOWN_PYTHON=$WORK/inplace/python3.11
mount_stop; mount_start
k3=$(register ptdemo-app)
assert_eq "$(py_of "$k3")" "$vb" "before the upgrade"
cp "$A" "$WORK/inplace/python3.11"
k4=$(register ptdemo-app)
[ "$k4" != "$k3" ] || fail "the key did not change with the binary"
assert_eq "$(py_of "$k4")" "$va" "after the upgrade in place"

# --- the base interpreter moved away (same version, same key) ---
mkdir -p "$WORK/home1" "$WORK/home2" "$WORK/home3"
cp "$B" "$WORK/home1/python3.11"; cp "$B" "$WORK/home2/python3.11"; cp "$B" "$WORK/home3/python3.11"
ln -sfn "$WORK/home1/python3.11" "$WORK/py/python"
export PACTOWN_PYTHON=$WORK/py/python
mount_stop; mount_start
k5=$("$PACTOWN" cache prewarm ptdemo-tools | cut -d' ' -f1)
assert_eq "$(py_of "$k5")" "$vb" "built on home1"
grep -q "^home = $WORK/home1" "$WORK/cache/store/$k5/pyvenv.cfg" || fail "pyvenv.cfg: $(cat "$WORK/cache/store/$k5/pyvenv.cfg")"
ln -sfn "$WORK/home2/python3.11" "$WORK/py/python"; rm -rf "$WORK/home1"
out=$("$PACTOWN" cache prewarm ptdemo-tools 2>&1) || fail "prewarm after the base interpreter moved: $out"
assert_eq "$(echo "$out" | tail -1 | cut -d' ' -f1)" "$k5" "the key (same version)"
grep -q "the venv ${k5:0:12} is unusable: its base interpreter's directory $WORK/home1 (pyvenv.cfg home) is gone" <<<"$out" \
    || fail "the CLI did not say why: $out"
grep -q "$k5: its base interpreter's directory $WORK/home1 (pyvenv.cfg home) is gone; it is evicted" "$DAEMON_LOG" \
    || fail "no log line from the daemon"
grep -q "^home = $WORK/home2" "$WORK/cache/store/$k5/pyvenv.cfg" || fail "not rebuilt on home2"
assert_eq "$("$MNT/by-deps/$k5/bin/ptdemo-hello")" "ptdemo-hello ok" "a script of the rebuilt venv"
# found by the daemon at a lookup (after a restart, nothing cached by the kernel)
mount_stop
ln -sfn "$WORK/home3/python3.11" "$WORK/py/python"; rm -rf "$WORK/home2"
mount_start
assert_eq "$(py_of "$k5")" "$vb" "a lookup of a venv whose base moved"
grep -q "^home = $WORK/home3" "$WORK/cache/store/$k5/pyvenv.cfg" || fail "not rebuilt on home3 at the lookup"
grep -q "$k5: its base interpreter's directory $WORK/home2 (pyvenv.cfg home) is gone; it is built again" "$DAEMON_LOG" \
    || fail "no log line for the rebuild at a lookup"
mount_stop
# used only through the kernel's cache (by-deps/KEY/bin/python run directly):
# the daemon's periodic check finds it and has it rebuilt
mkdir -p "$WORK/home4"; cp "$B" "$WORK/home4/python3.11"
mount_start -o evict_interval=1
"$MNT/by-deps/$k5/bin/python" -c pass || fail "before the base moved"
ln -sfn "$WORK/home4/python3.11" "$WORK/py/python"; rm -rf "$WORK/home3"
wait_until 15 grep -q "$k5: its base interpreter's directory $WORK/home3 (pyvenv.cfg home) is gone; it is evicted" "$DAEMON_LOG" \
    || fail "the daemon did not find the broken venv by itself"
# the line above comes before the eviction, this one after it (a use in between may find it half gone)
wait_until 15 grep -q "evicted $k5 (its base interpreter's directory $WORK/home3" "$DAEMON_LOG" \
    || fail "the broken venv was not evicted"
assert_eq "$(py_of "$k5")" "$vb" "run directly after the periodic check"
grep -q "^home = $WORK/home4" "$WORK/cache/store/$k5/pyvenv.cfg" || fail "not rebuilt on home4"
mount_stop

# --- one resolution for every client, whatever its PATH ---
mkdir -p "$WORK/path-daemon" "$WORK/path-cli"
ln -s "$B" "$WORK/path-daemon/python3"; ln -s "$A" "$WORK/path-cli/python3"
export PACTOWN_PYTHON=python3
PATH=$WORK/path-daemon:$PATH mount_start
PATH=$WORK/path-cli:$PATH assert_eq "$(PATH=$WORK/path-cli:$PATH key_python ptdemo-core)" "python cpython $vb linux-x86_64" \
    "a CLI with another python3 first in its PATH"
grep -q "is not executable by other users" "$DAEMON_LOG" && fail "a warning for $B, which every user can run"
mount_stop
unset PACTOWN_PYTHON
mount_start
if [ "$(stat -c %a /root)" = 700 ] && [[ "$A" == /root/* ]]; then
    grep -q "warning: the interpreter $A (setting \`python\` = python3) is not executable by other users (/root is mode 0700)" "$DAEMON_LOG" \
        || fail "no warning for an interpreter under /root: $(grep -i warn "$DAEMON_LOG")"
fi
pass
