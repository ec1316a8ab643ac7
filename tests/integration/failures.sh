#!/usr/bin/env bash
# Remembered failures and restarts. A build that failed because of the
# environment (here: the interpreter changed under a registered set) is
# forgotten by a restart; a build that failed on its own (a requirement no
# index has) is still answered EIO after a restart, within failure_ttl,
# without building again. `pactown cache rm` clears a failure by hand, and
# `pactown cache rebuild` builds a venv again.
. "$(dirname "$0")/lib.sh"
A=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
B=/usr/bin/python3.11
[ -x "$B" ] || skip "needs a second interpreter at $B"
[ "$("$A" -V)" != "$("$B" -V)" ] || skip "needs two interpreters of different versions"
EXPECT_DAEMON='is not executable by other users|its last build failed for a cause of the environment|cleared the failed build'
chmod 755 "$WORK"
mkdir -p "$WORK/py"
ln -s "$B" "$WORK/py/python"
export PACTOWN_PYTHON=$WORK/py/python PACTOWN_FAILURE_TTL=3600
mount_start

# an environment failure: registered for B, the link now leads to A
envkey=$(register ptdemo-extra)
badkey=$(register ptdemo-missing)
ln -sfn "$A" "$WORK/py/python"
stat -L "$MNT/by-deps/$envkey" >/dev/null 2>&1 && fail "built for the wrong interpreter"
ln -sfn "$B" "$WORK/py/python"
stat -L "$MNT/by-deps/$envkey" >/dev/null 2>&1 && fail "the failure was not remembered (failure_ttl)"
stat -L "$MNT/by-deps/$badkey" >/dev/null 2>&1 && fail "a set with a missing package built"
assert_eq "$(stat_json build_failures)" 2 "failures"
builds=$(stat_json builds)

mount_stop
mount_start
grep -q "$envkey: its last build failed for a cause of the environment (interpreter, disk); it is built again" "$DAEMON_LOG" \
    || fail "the restart did not clear the environment failure"
"$MNT/by-deps/$envkey/bin/python" -c 'import ptdemo_extra' || fail "the set did not build after the restart"
stat -L "$MNT/by-deps/$badkey" >/dev/null 2>&1 && fail "the build failure was forgotten by the restart"
assert_eq "$(stat_json builds)" "$((builds + 1))" "builds after the restart (the failed set is not built again)"

# by hand
out=$("$PACTOWN" cache rm "$badkey") || fail "cache rm of a failed build"
assert_eq "$out" "cleared the failed build of $badkey" "cache rm output"
stat -L "$MNT/by-deps/$badkey" >/dev/null 2>&1 && fail "a set with a missing package built"
assert_eq "$(stat_json builds)" "$((builds + 2))" "a cleared failure builds again at the next lookup"
out=$("$PACTOWN" cache rebuild "$envkey" 2>"$WORK/rebuild.err") || fail "cache rebuild: $(cat "$WORK/rebuild.err")"
grep -q "^evicted $envkey$" <<<"$out" || fail "rebuild output: $out; stderr: $(cat "$WORK/rebuild.err")"
grep -q "^$envkey built in" <<<"$out" || fail "rebuild output: $out; stderr: $(cat "$WORK/rebuild.err")"
assert_eq "$(stat_json builds)" "$((builds + 3))" "builds after rebuild"
rc=0; "$PACTOWN" cache rebuild 0123456789abcdef0123456789abcdef >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 8 "rebuild of an unknown key"

# keys as people type them: a unique prefix of 8+ hex digits, any case
"$PACTOWN" cache show "${envkey:0:8}" | grep -q "$envkey" || fail "cache show with an 8-digit prefix"
"$PACTOWN" cache show "$(echo "${envkey:0:12}" | tr a-f A-F)" >/dev/null || fail "cache show with an upper-case prefix"
"$PACTOWN" lease add "${envkey:0:10}" --pid $$ >/dev/null || fail "lease add with a prefix"
"$PACTOWN" lease rm "${envkey:0:10}" --pid $$ >/dev/null || fail "lease rm with a prefix"
rc=0; "$PACTOWN" cache show "${envkey:0:7}" >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 2 "a prefix of 7 digits"
rc=0; "$PACTOWN" cache show ffffffff0 >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 8 "a prefix nothing has"
rc=0; "$PACTOWN" lease add 0123456789abcdef0123456789abcdef --pid $$ >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 8 "lease add of an unknown key"
pass
