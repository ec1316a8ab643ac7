#!/usr/bin/env bash
# Long store paths (uv#6489, pip#1773). With a cache_dir whose venv paths are
# over 127 bytes, uv and pip write /bin/sh launchers instead of shebang
# lines; every script of the venv must still run, a script that starts with a
# docstring and then `from __future__ import annotations` included, with uv
# and with pip. The control socket works whatever cache_dir's length (its
# path is over sun_path's 108 bytes here). A cache_dir too long for any
# shebang line is refused at start with a message that says how long it may be.
. "$(dirname "$0")/lib.sh"
long=$WORK/$(printf 'c%.0s' $(seq 120))
export PACTOWN_CACHE_DIR=$long
mount_start
key=$(register ptdemo-tools)
venv=$MNT/by-deps/$key
[ "$(stat -c %s "$venv")" -gt 127 ] || fail "the store path is not long enough for the test"
assert_eq "$("$venv/bin/ptdemo-hello")" "ptdemo-hello ok" "console script under a long store path (uv)"
assert_eq "$("$venv/bin/ptdemo-doc")" "ptdemo-doc ok" "docstring + __future__ script under a long store path (uv)"
head -c2 "$venv/bin/ptdemo-doc" | grep -q '#!' || fail "no shebang"
[ "$(head -1 "$venv/bin/ptdemo-doc")" = "#!$(readlink "$venv")/bin/python" ] || fail "ptdemo-doc: $(head -1 "$venv/bin/ptdemo-doc")"
grep -q "given a plain shebang line" "$MNT/logs/$key.log" || fail "the build log does not say the launchers were rewritten"
[ ${#long} -gt 108 ] || fail "cache_dir should be longer than sun_path"
"$PACTOWN" cache gc --dry-run >"$WORK/gc.out" 2>&1 || fail "cache gc with a long cache_dir: $(cat "$WORK/gc.out")"
mount_stop

mount_start -o installer=pip
"$PACTOWN" cache rm "$key" >/dev/null || fail "cache rm with a long cache_dir"
assert_eq "$("$venv/bin/ptdemo-hello")" "ptdemo-hello ok" "console script under a long store path (pip)"
assert_eq "$("$venv/bin/ptdemo-doc")" "ptdemo-doc ok" "docstring + __future__ script (pip)"
"$venv/bin/pip" --version >/dev/null || fail "pip's own launcher under a long store path"
mount_stop

# too long for a shebang line: refused, nothing mounted
toolong=$WORK/$(printf 'd%.0s' $(seq 220))
rc=0
PACTOWN_CACHE_DIR=$toolong "$PACTOWNFS" -f "$MNT" >"$WORK/toolong.err" 2>&1 || rc=$?
assert_eq "$rc" 1 "exit code for a cache_dir too long"
grep -q "cache_dir $toolong is too long: .*Linux reads at most 255 (BINPRM_BUF_SIZE); choose a cache_dir of at most [0-9]* bytes" "$WORK/toolong.err" \
    || fail "message: $(cat "$WORK/toolong.err")"
is_mounted "$MNT" && fail "mounted with a cache_dir that was refused"
pass
