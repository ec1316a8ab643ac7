#!/usr/bin/env bash
# Users kept apart, limits held by the kernel: two users' services run under
# two uids of their own (kept in the index: the same again after a restart),
# each sandbox is 0700 and the other user cannot read it, both use one venv
# (one store entry); no groups, no capabilities, no new privileges, umask
# 077, HOME/USER/LOGNAME; a job past max_memory_mb=64 is killed by the kernel
# in its cgroup while the other user's service keeps answering; a fork loop
# stops at max_processes; a spinner is held near max_cpu_percent; the
# cgroups go with their services.
. "$(dirname "$0")/lib.sh"
mount_start
cat >"$WORK/svc.md" <<'MD'
```text markpact:deps python
ptdemo-core
ptdemo-app
```
```text markpact:file path=data/secret.txt
ann's secret
```
```bash markpact:run
exec python -m ptdemo_app
```
MD
printf '```bash markpact:run\ntrue\n```\n' >"$WORK/true.md"
pa=$(free_port) pb=$(free_port)
"$PACTOWN" run "$WORK/svc.md" --service-id ann-api --user ann --port "$pa" --detach 2>"$WORK/ann.err" \
    || fail "run --user ann: $(cat "$WORK/ann.err")"
grep -q "user ann: uid [0-9]* (new" "$WORK/ann.err" || fail "no new-user note: $(cat "$WORK/ann.err")"
"$PACTOWN" run "$WORK/svc.md" --service-id bob-api --user bob --port "$pb" --detach 2>"$WORK/bob.err" \
    || fail "run --user bob: $(cat "$WORK/bob.err")"
pid_of() { "$PACTOWN" ps --json | python3 -c "import json,sys; print([s['pid'] for s in json.load(sys.stdin) if s['id']=='$1'][0])"; }
status_of() { awk -v k="$2:" '$1 == k { $1 = ""; print substr($0, 2) }' "/proc/$1/status"; }
ua=$(status_of "$(pid_of ann-api)" Uid) ub=$(status_of "$(pid_of bob-api)" Uid)
uid_a=${ua%% *} uid_b=${ub%% *}
[ "$uid_a" != "$uid_b" ] && [ "$uid_a" -ge 61184 ] && [ "$uid_b" -ge 61184 ] || fail "uids: ann $ua, bob $ub"
assert_eq "$ua" "$uid_a $uid_a $uid_a $uid_a" "ann's real, effective, saved and fs uid"
p=$(pid_of ann-api)
assert_eq "$(status_of "$p" Groups)" "" "supplementary groups"
assert_eq "$(status_of "$p" CapEff) $(status_of "$p" CapPrm) $(status_of "$p" NoNewPrivs)" \
    "0000000000000000 0000000000000000 1" "capabilities and no_new_privs"
assert_eq "$(stat -c '%a %u' "$WORK/sandboxes/@ann/ann-api")" "700 $uid_a" "ann's sandbox"
assert_eq "$(stat -c '%u' "$WORK/sandboxes/@ann/ann-api/data/secret.txt")" "$uid_a" "owner of ann's files"
assert_eq "$(http_status "http://127.0.0.1:$pa/")" 200 "ann's service"
assert_eq "$(http_status "http://127.0.0.1:$pb/")" 200 "bob's service"
assert_eq "$(ls "$WORK/cache/store" | wc -l)" 1 "store entries for two users' services of one set"
assert_eq "$(readlink "$WORK/sandboxes/@ann/ann-api/.venv")" "$(readlink "$WORK/sandboxes/@bob/bob-api/.venv")" "one venv"

# bob's process cannot read ann's sandbox; who bob is, and his umask
cat >"$WORK/peek.md" <<MD
\`\`\`bash markpact:run
echo "\$USER \$LOGNAME \$HOME \$(id -u)"
umask
cat $WORK/sandboxes/@ann/ann-api/data/secret.txt 2>&1 || echo "refused"
kill -0 $(pid_of ann-api) 2>/dev/null || echo "cannot signal ann"
env | grep -c '^PACTOWN_' || true
\`\`\`
MD
out=$("$PACTOWN" run --once "$WORK/peek.md" --service-id bob-peek --user bob 2>"$WORK/peek.err") \
    || fail "bob's job: $(cat "$WORK/peek.err")"
assert_eq "$out" "bob bob $WORK/sandboxes/@bob/bob-peek $uid_b
0077
cat: $WORK/sandboxes/@ann/ann-api/data/secret.txt: Permission denied
refused
cannot signal ann
0" "bob's job (nothing of the runner's environment)"

# the same user has the same uid again (the index keeps it)
"$PACTOWN" stop ann-api >/dev/null || fail "stop ann-api"
"$PACTOWN" run "$WORK/svc.md" --service-id ann-api --user ann --port "$pa" --detach 2>"$WORK/ann2.err" \
    || fail "run --user ann again: $(cat "$WORK/ann2.err")"
assert_eq "$(status_of "$(pid_of ann-api)" Uid)" "$ua" "ann's uid the second time"
# another user never takes over a service id
rc=0; "$PACTOWN" run "$WORK/svc.md" --service-id ann-api --user bob --port "$(free_port)" >/dev/null 2>"$WORK/take.err" || rc=$?
assert_eq "$rc" 12 "exit code of bob taking ann's service id"
grep -q "service ann-api belongs to user ann" "$WORK/take.err" || fail "$(cat "$WORK/take.err")"

# limits held by the kernel, in cgroups of their own
rc=0; "$PACTOWN" run --once "$WORK/svc.md" --service-id x --limit max_memory_mb=64 >/dev/null 2>"$WORK/nouser.err" || rc=$?
assert_eq "$rc" 2 "exit code of --limit without --user"
# v1 memory, cpu and pids hierarchies, or v2 with those controllers
have_cgroups() {
    [ -d /sys/fs/cgroup/memory ] && [ -d /sys/fs/cgroup/pids ] && [ -d /sys/fs/cgroup/cpu ] && return 0
    grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null && grep -qw pids /sys/fs/cgroup/cgroup.controllers
}
if have_cgroups; then
printf '```bash markpact:run\npython -c "b = b\\"x\\" * (300 << 20); print(\\"survived\\")"\n```\n' >"$WORK/hog.md"
rc=0; out=$("$PACTOWN" run --once "$WORK/hog.md" --service-id ann-hog --user ann --limit max_memory_mb=64 2>"$WORK/hog.err") || rc=$?
assert_eq "$rc $out" "137 " "exit code (SIGKILL) and output of a job past max_memory_mb=64"
grep -q "the kernel killed ann-hog: out of memory in its cgroup (max_memory_mb=64)" "$WORK/hog.err" \
    || fail "no OOM line: $(cat "$WORK/hog.err")"
grep -q "cgroup v[12] (memory, cpu, pids): max_memory_mb=64" "$WORK/hog.err" || fail "the cgroup kind is not said: $(cat "$WORK/hog.err")"
assert_eq "$(http_status "http://127.0.0.1:$pb/")" 200 "bob's service after ann's job was OOM-killed"
cat >"$WORK/forks.md" <<'MD'
```bash markpact:run
python - <<'PY'
import os, time
n = 0
try:
    while n < 1000:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
    print("no limit")
except OSError as e:
    print("stopped", e.errno == 11)
PY
```
MD
out=$("$PACTOWN" run --once "$WORK/forks.md" --service-id ann-forks --user ann --limit max_processes=20 2>"$WORK/forks.err") \
    || fail "fork job: $(cat "$WORK/forks.err")"
assert_eq "$out" "stopped True" "a fork loop at max_processes=20 (EAGAIN)"
cat >"$WORK/spin.md" <<'MD'
```bash markpact:run
python -c "
import time
t = time.monotonic()
while time.monotonic() - t < 3: pass
print(round(time.process_time() / 3 * 100))"
```
MD
out=$("$PACTOWN" run --once "$WORK/spin.md" --service-id ann-spin --user ann --limit max_cpu_percent=20 2>"$WORK/spin.err") \
    || fail "spin job: $(cat "$WORK/spin.err")"
# the CFS quota: 20 ms of each 100 ms period, over 3 s (a kernel's bound, not a speed target)
[ "$out" -ge 10 ] && [ "$out" -le 30 ] || fail "a spinner at max_cpu_percent=20 used $out% of a CPU"
else
    say "SKIP part: the kernel has no memory, cpu and pids cgroup controllers here: the kernel's limits are not tested"
    rc=0; "$PACTOWN" run --once "$WORK/true.md" --service-id ann-x --user ann --limit max_memory_mb=64 2>"$WORK/nocg.err" || rc=$?
    assert_eq "$rc" 12 "a limit this host cannot hold is refused"
fi

# admission: a profiles file ([user], [*] for the rest), tiers, --limit over them
cat >"$WORK/profiles.ini" <<'INI'
[carol]
tier = free
max_concurrent_services = 1
[dave]
max_services_per_hour = 2
[eve]
blocked = yes
reason = abuse reported
INI
export PACTOWN_USER_PROFILES=$WORK/profiles.ini
"$PACTOWN" run "$WORK/svc.md" --service-id carol-1 --user carol --port "$(free_port)" --detach 2>"$WORK/c1.err" \
    || fail "carol's first service: $(cat "$WORK/c1.err")"
! have_cgroups || grep -q "max_memory_mb=256 max_cpu_percent=25" "$WORK/c1.err" \
    || fail "tier free's limits are not said: $(cat "$WORK/c1.err")"
rc=0; "$PACTOWN" run "$WORK/svc.md" --service-id carol-2 --user carol --port "$(free_port)" --detach >/dev/null 2>"$WORK/c2.err" || rc=$?
assert_eq "$rc" 12 "exit code of carol's second service at max_concurrent_services=1"
grep -q "user carol: 1 of 1 concurrent services running (max_concurrent_services)" "$WORK/c2.err" || fail "$(cat "$WORK/c2.err")"
"$PACTOWN" stop carol-1 >/dev/null
"$PACTOWN" run "$WORK/svc.md" --service-id carol-2 --user carol --port "$(free_port)" --detach 2>"$WORK/c3.err" \
    || fail "carol's service after a stop: $(cat "$WORK/c3.err")"
"$PACTOWN" stop carol-2 >/dev/null
printf '```bash markpact:run\ntrue\n```\n' >"$WORK/true.md"
for i in 1 2; do "$PACTOWN" run --once "$WORK/true.md" --service-id dave-$i --user dave 2>/dev/null || fail "dave's job $i"; done
# each `pactown run` is a new process: the count is the index's
rc=0; "$PACTOWN" run --once "$WORK/true.md" --service-id dave-3 --user dave 2>"$WORK/d3.err" || rc=$?
assert_eq "$rc" 12 "exit code of dave's third start in an hour"
grep -q "user dave: 2 of 2 services started in the last hour (max_services_per_hour)" "$WORK/d3.err" || fail "$(cat "$WORK/d3.err")"
out=$("$PACTOWN" run --once "$WORK/true.md" --service-id dave-4 --user dave --limit max_services_per_hour=5 2>&1) \
    || fail "--limit over the file's: $out"
rc=0; "$PACTOWN" run --once "$WORK/true.md" --service-id eve-1 --user eve 2>"$WORK/e.err" || rc=$?
assert_eq "$rc" 12 "exit code of a blocked user"
grep -q "user eve is blocked: abuse reported" "$WORK/e.err" || fail "$(cat "$WORK/e.err")"
ap=$(free_port)
rc=0; "$PACTOWN" run "$WORK/svc.md" --service-id ann-ports --user ann --limit allowed_ports=$ap --port "$(free_port)" \
    --detach >/dev/null 2>"$WORK/p.err" || rc=$?
assert_eq "$rc" 12 "exit code of a port not allowed"
grep -q "user ann: port [0-9]* is not one of its allowed_ports" "$WORK/p.err" || fail "$(cat "$WORK/p.err")"
"$PACTOWN" run "$WORK/svc.md" --service-id ann-ports --user ann --limit allowed_ports=$ap --detach 2>"$WORK/p2.err" \
    || fail "run with allowed_ports and no --port: $(cat "$WORK/p2.err")"
assert_eq "$(http_status "http://127.0.0.1:$ap/")" 200 "the service on its one allowed port"
unset PACTOWN_USER_PROFILES

# what leaves the service's process group is still in its cgroup: it ends with it
cat >"$WORK/escape.md" <<'MD'
```bash markpact:run
setsid -f sh -c 'echo $$ > escaped.pid; exec sleep 300'
while [ ! -s escaped.pid ]; do sleep 0.05; done
```
MD
"$PACTOWN" run --once "$WORK/escape.md" --service-id ann-escape --user ann 2>"$WORK/esc.err" || fail "escape job: $(cat "$WORK/esc.err")"
esc=$(cat "$WORK/sandboxes/@ann/ann-escape/escaped.pid")
wait_until 5 proc_gone "$esc" || fail "a process that left the job's process group (pid $esc) outlived the job"

# a job's shell tests run as the user, in its cgroups (still there after the job)
cat >"$WORK/tjob.md" <<'MD'
```bash markpact:run
true
```
```bash markpact:test shell
test "$(id -u)" -ge 61184
grep -q 'pids:/.*/ann-tjob$' /proc/self/cgroup || ! test -d /sys/fs/cgroup/pids
```
MD
out=$("$PACTOWN" run --once --test "$WORK/tjob.md" --service-id ann-tjob --user ann 2>"$WORK/tjob.err") \
    || fail "a job's shell tests: $out $(cat "$WORK/tjob.err")"

# the build step runs as the user, in the service's cgroups
cat >"$WORK/bld.md" <<'MD'
```bash markpact:build
id -u > build-uid; grep -E ':(pids|memory):' /proc/self/cgroup > build-cgroup
```
```bash markpact:run
true
```
MD
"$PACTOWN" run --once "$WORK/bld.md" --service-id ann-bld --user ann --limit max_processes=50 2>"$WORK/bld.err" \
    || fail "build job: $(cat "$WORK/bld.err")"
assert_eq "$(cat "$WORK/sandboxes/@ann/ann-bld/build-uid")" "$uid_a" "the build step's uid"
if have_cgroups; then
    grep -q "pids:/.*pactown-[0-9a-f]\{8\}/ann-bld$" "$WORK/sandboxes/@ann/ann-bld/build-cgroup" \
        || fail "the build step is not in the service's cgroup: $(cat "$WORK/sandboxes/@ann/ann-bld/build-cgroup")"
fi

# a tokenless API on loopback is no way in for a user's service: refused for users' uids
api_port=$(free_port)
PACTOWN_PORT_START=31000 PACTOWN_PORT_END=31100 serve_start --socket '' --listen "127.0.0.1:$api_port"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$api_port/status")" 200 "root on the tokenless API"
printf '```bash markpact:run\ncurl -s -o /dev/null -w "%%{http_code}" http://127.0.0.1:%s/status\n```\n' "$api_port" >"$WORK/knock.md"
out=$("$PACTOWN" run --once "$WORK/knock.md" --service-id bob-knock --user bob 2>"$WORK/knock.err") || fail "knock: $(cat "$WORK/knock.err")"
assert_eq "$out" 401 "a user's service on the tokenless API"

# who sees what: ps --user, cache stats per user, by-service/ as each user
"$PACTOWN" run "$WORK/svc.md" --service-id ann-lim --user ann --limit max_memory_mb=128 --port "$(free_port)" \
    --detach 2>/dev/null || fail "ann-lim"
assert_eq "$("$PACTOWN" ps --user ann | awk 'NR > 1 {print $1}' | sort | tr '\n' ' ')" "ann-api ann-lim ann-ports " "ps --user ann"
"$PACTOWN" cache stats --json >"$WORK/stats.json" || fail "cache stats --json"
python3 - "$WORK/stats.json" "$uid_a" <<'PY' || fail "per-user stats: $(cat "$WORK/stats.json")"
import json, sys
users = {u["user"]: u for u in json.load(open(sys.argv[1]))["users"]}
a = users["ann"]
assert (a["uid"], a["running"], a["max_memory_mb"]) == (int(sys.argv[2]), 3, 128), a
assert a["memory_bytes"] > 1 << 20, a     # three python services, measured by their cgroups
assert users["bob"]["running"] == 1, users
PY
"$PACTOWN" cache stats | grep -q "^ann  *3 running, .* in use; max_memory_mb=128" || fail "cache stats: $("$PACTOWN" cache stats)"
as_user() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
assert_eq "$(as_user "$uid_a" ls "$MNT/by-service" | tr '\n' ' ')" "ann-api ann-bld ann-escape ann-forks ann-hog ann-lim ann-ports ann-spin ann-tjob " "by-service/ as ann (its stopped jobs too, as for root)"
assert_eq "$(as_user "$uid_b" ls "$MNT/by-service" | tr '\n' ' ')" "bob-api bob-knock bob-peek " "by-service/ as bob"
as_user "$uid_b" readlink "$MNT/by-service/ann-api" >/dev/null 2>&1 && fail "bob reads ann's by-service link"
[ -n "$(readlink "$MNT/by-service/ann-api")" ] || fail "root does not see ann's by-service link"

for id in ann-hog ann-forks ann-spin; do
    have_cgroups || break
    if compgen -G "/sys/fs/cgroup/*/pactown-*/$id" >/dev/null || compgen -G "/sys/fs/cgroup/*/*/*/pactown-*/$id" >/dev/null; then
        fail "the cgroup of $id is left after its end"
    fi
done
pass
