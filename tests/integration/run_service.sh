#!/usr/bin/env bash
# pactown run: a cold start builds, a second service with the same deps in
# another order and case is a cache hit on the same venv; the service answers
# HTTP, sees PORT/MARKPACT_PORT/HOST/VIRTUAL_ENV/PATH; ps lists it; stop ends
# its whole process group.
. "$(dirname "$0")/lib.sh"
mount_start

write_readme "$WORK/a.md" ptdemo-app ptdemo_extra
write_readme "$WORK/b.md" "PTDemo.Extra  # helpers" "" "PTDEMO_APP"
pa=$(free_port)
out=$("$PACTOWN" run "$WORK/a.md" --service-id a --port "$pa" --detach 2>&1) || fail "run a: $out"
grep -q "cache miss" <<<"$out" || fail "the first run was not a cache miss: $out"
grep -q "sandbox ready in" <<<"$out" || fail "no 'sandbox ready' line: $out"
grep -q "running in .* -> 200" <<<"$out" || fail "no 'running in … -> 200' line: $out"
assert_eq "$(http_status "http://127.0.0.1:$pa/")" 200 "HTTP status of service a"

pb=$(free_port)
out=$("$PACTOWN" run "$WORK/b.md" --service-id b --port "$pb" --detach 2>&1) || fail "run b: $out"
grep -q "cache hit" <<<"$out" || fail "the second service was not a cache hit: $out"
assert_eq "$(http_status "http://127.0.0.1:$pb/")" 200 "HTTP status of service b"
assert_eq "$(readlink "$WORK/sandboxes/a/.venv")" "$(readlink "$WORK/sandboxes/b/.venv")" ".venv of a and b"
assert_eq "$(cat "$WORK/sandboxes/b/data/hello.txt")" "hello" "file written from the README"
assert_eq "$(stat_json builds)" 1 "builds after two services"
assert_eq "$(stat_json hits)" 1 "hits after two services"
key=$(basename "$(readlink "$WORK/sandboxes/a/.venv")")
assert_eq "$(readlink "$MNT/by-service/b")" "../by-deps/$key" "by-service/b"

# --prepare: sandbox and venv only, the venv's path printed, nothing started
venv=$("$PACTOWN" run "$WORK/b.md" --service-id prep --prepare 2>/dev/null) || fail "run --prepare"
assert_eq "$venv" "$WORK/cache/store/$key" "venv printed by --prepare"
assert_eq "$(cat "$WORK/sandboxes/prep/data/hello.txt")" "hello" "file written by --prepare"
"$PACTOWN" ps --json | python3 -c "
import json, sys
assert 'prep' not in {x['id'] for x in json.load(sys.stdin)}" || fail "--prepare registered a service"

# --refresh: the venv built again on purpose; refused while services use it
rc=0; "$PACTOWN" run "$WORK/b.md" --service-id prep --prepare --refresh >/dev/null 2>"$WORK/refresh.err" || rc=$?
assert_eq "$rc" 9 "run --refresh of a venv that running services lease"
grep -q "is in use (leased)" "$WORK/refresh.err" || fail "refresh refusal: $(cat "$WORK/refresh.err")"
write_readme "$WORK/x.md" ptdemo-extra
"$PACTOWN" run "$WORK/x.md" --service-id x --prepare >/dev/null 2>&1 || fail "prepare x"
builds=$(stat_json builds)
"$PACTOWN" run "$WORK/x.md" --service-id x --prepare --refresh >/dev/null 2>"$WORK/refresh.err" || fail "run --refresh: $(cat "$WORK/refresh.err")"
grep -q "pactown: --refresh: evicted" "$WORK/refresh.err" || fail "refresh: $(cat "$WORK/refresh.err")"
assert_eq "$(stat_json builds)" "$((builds + 1))" "builds after --refresh"

# the environment of the run command
cat >"$WORK/env.md" <<'MD'
```text markpact:deps python
ptdemo-app
```
```bash markpact:run
env | grep -E '^(PORT|MARKPACT_PORT|HOST|VIRTUAL_ENV)=' | sort > env.txt; echo "PATH0=${PATH%%:*}" >> env.txt; exec python -m ptdemo_app
```
MD
pe=$(free_port)
"$PACTOWN" run "$WORK/env.md" --service-id e --port "$pe" --detach >/dev/null 2>&1 || fail "run e"
store=$WORK/cache/store/$(basename "$(readlink "$WORK/sandboxes/e/.venv")")
assert_eq "$(cat "$WORK/sandboxes/e/env.txt" | tr '\n' ' ')" \
    "HOST=127.0.0.1 MARKPACT_PORT=$pe PORT=$pe VIRTUAL_ENV=$store PATH0=$store/bin " "service environment"

# ps, then stop ends the whole process group (a child of the service too)
"$PACTOWN" ps --json | python3 -c "
import json, sys
s = {x['id']: x for x in json.load(sys.stdin)}
assert s['a']['running'] and s['b']['running'] and s['a']['port'] == $pa, s" || fail "pactown ps --json"
cat >"$WORK/tree.md" <<'MD'
```text markpact:deps python
ptdemo-app
```
```bash markpact:run
sh -c 'echo $$ > child.pid; exec sleep 1000' & exec python -m ptdemo_app
```
MD
pt=$(free_port)
"$PACTOWN" run "$WORK/tree.md" --service-id t --port "$pt" --detach >/dev/null 2>&1 || fail "run t"
child=$(cat "$WORK/sandboxes/t/child.pid")
kill -0 "$child" || fail "the service's child is not running"
"$PACTOWN" stop t >/dev/null || fail "pactown stop t"
wait_until 10 proc_gone "$child" || fail "the service's child $child survived pactown stop"
"$PACTOWN" ps --all --json | python3 -c "
import json, sys
s = {x['id']: x for x in json.load(sys.stdin)}
assert not s['t']['running'], s" || fail "ps still shows t running"
set +e; "$PACTOWN" stop nosuch >/dev/null 2>&1; rc=$?; set -e
assert_eq "$rc" 8 "exit code of stop for an unknown service"

# a second run of a service id that is still running is refused (9), a stopped one restarts
set +e; out=$("$PACTOWN" run "$WORK/a.md" --service-id a --port "$(free_port)" --detach 2>&1); rc=$?; set -e
assert_eq "$rc" 9 "exit code of run for a running service id"
grep -q "already running" <<<"$out" || fail "no 'already running' message: $out"
"$PACTOWN" stop a >/dev/null || fail "stop a"
"$PACTOWN" run "$WORK/a.md" --service-id a --port "$pa" --detach >/dev/null 2>&1 || fail "restart of a stopped service"

# foreground: Ctrl-C (SIGINT) stops the service's whole group and exits 0
pf=$(free_port)
"$PACTOWN" run "$WORK/tree.md" --service-id fg --port "$pf" >"$WORK/fg.out" 2>&1 &
fg=$!
wait_until 30 sh -c "[ \"\$(cat '$WORK/sandboxes/fg/child.pid' 2>/dev/null)\" ] && grep -q 'running in' '$WORK/fg.out'" \
    || fail "the foreground service did not come up: $(cat "$WORK/fg.out")"
child=$(cat "$WORK/sandboxes/fg/child.pid")
kill -INT "$fg"
rc=0; wait "$fg" || rc=$?
assert_eq "$rc" 0 "exit code of a foreground run stopped with SIGINT"
proc_gone "$child" || fail "the foreground service's child survived SIGINT"
[ "$(http_status "http://127.0.0.1:$pf/")" = 200 ] && fail "the foreground service still answers"

# services come and go: ps lists running ones (--all: stopped too); rm
# removes a stopped one (sandbox, record, by-service entry); stopped records
# older than stopped_service_ttl are pruned, running ones never
"$PACTOWN" ps | grep -q '^t ' && fail "ps lists the stopped service t without --all"
"$PACTOWN" ps --all | grep -Eq '^t  *stopped  *-  .* 20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9:]{8} ' \
    || fail "ps --all does not list t as stopped with its end time: $("$PACTOWN" ps --all)"
"$PACTOWN" ps --all --json | python3 -c "
import json, sys, time
s = {x['id']: x for x in json.load(sys.stdin)}
assert 0 < time.time() - s['t']['ended'] < 300, s['t']" || fail "no end time of t"
rc=0; "$PACTOWN" rm a >/dev/null 2>"$WORK/rm.err" || rc=$?
assert_eq "$rc" 9 "exit code of rm of a running service"
grep -q "pactown stop a" "$WORK/rm.err" || fail "rm refusal: $(cat "$WORK/rm.err")"
[ -L "$MNT/by-service/t" ] || fail "by-service/t missing before rm"
"$PACTOWN" rm t >/dev/null || fail "pactown rm t"
[ -e "$WORK/sandboxes/t" ] && fail "rm left the sandbox of t"
wait_until 5 sh -c "! [ -L '$MNT/by-service/t' ]" || fail "by-service/t outlived pactown rm"
"$PACTOWN" ps --all | grep -q '^t ' && fail "ps --all lists t after rm"
rc=0; "$PACTOWN" rm t >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 8 "exit code of rm of an unknown service"
# a sandbox without a record (run --prepare made it): rm removes it
[ -d "$WORK/sandboxes/prep" ] || fail "no sandbox of prep"
"$PACTOWN" rm prep | grep -q "removed the sandbox of prep (it had no service record)" || fail "rm of the sandbox prep"
[ -e "$WORK/sandboxes/prep" ] && fail "rm left the sandbox prep"
[ -d "$WORK/sandboxes/fg" ] || fail "no sandbox of the stopped service fg"
wait_until 10 sh -c "'$PACTOWN' ps --all --set stopped_service_ttl=1 >/dev/null 2>&1; ! [ -d '$WORK/sandboxes/fg' ]" \
    || fail "the stopped service fg was not pruned after stopped_service_ttl=1"
"$PACTOWN" ps --all | grep -q '^fg ' && fail "ps --all lists the pruned fg"
[ -d "$WORK/sandboxes/a" ] || fail "pruning removed the running service a"
pass
