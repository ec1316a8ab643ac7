#!/usr/bin/env bash
# A requirement that cannot be installed: the lookup fails with EIO and a log
# that says why; the failure is remembered (no rebuild storm) until
# failure_ttl passes; other keys are served meanwhile; `pactown run` exits 4.
. "$(dirname "$0")/lib.sh"
mount_start

bad=$(register ptdemo-missing)
out=$(stat "$MNT/by-deps/$bad" 2>&1) && fail "a venv for ptdemo-missing exists"
case "$out" in *"Input/output error"*) ;; *) fail "expected EIO, got: $out" ;; esac
grep -q "ptdemo-missing" "$MNT/logs/$bad.log" || fail "the log does not name the missing requirement"
grep -q "FAILED" "$MNT/logs/$bad.log" || fail "the log does not say FAILED"
[ ! -e "$WORK/cache/store/$bad" ] || fail "the failed build left $WORK/cache/store/$bad"
assert_eq "$(stat_json build_failures)" 1 "build_failures"
assert_eq "$(stat_json failed)" 1 "failed entries"

# remembered: a second lookup fails at once without building again
stat "$MNT/by-deps/$bad" >/dev/null 2>&1 && fail "second lookup succeeded"
assert_eq "$(stat_json builds)" 1 "builds after a repeated failing lookup"

# the daemon goes on serving other keys
good=$(register ptdemo-extra)
"$MNT/by-deps/$good/bin/python" -c 'import ptdemo_extra' || fail "another key after a failure"

# pactown run on a README with the bad requirement: exit code 4
write_readme "$WORK/bad.md" ptdemo-app ptdemo-missing
set +e; out=$("$PACTOWN" run "$WORK/bad.md" --service-id bad --skip-health-check 2>&1); rc=$?; set -e
assert_eq "$rc" 4 "exit code of pactown run when the build fails"
grep -q "build log" <<<"$out" || fail "pactown run does not point at the build log: $out"

# once failure_ttl has passed, the next lookup tries again
mount_stop
mount_start -o failure_ttl=0
stat "$MNT/by-deps/$bad" >/dev/null 2>&1 && fail "retried lookup succeeded"
assert_eq "$(stat_json builds)" 4 "builds after the retry (bad, good, bad.md's set, bad again)"
pass
