#!/usr/bin/env bash
# Warm starts (docs/WARM.md): after a cold start of a key with warm = yes, a
# warm process of the venv is started; the next start of the same service is
# forked from it and sees what a cold start sees: the same os.environ,
# sys.path, sys.argv, sys.orig_argv, sys.executable, cwd, ids, process group
# and session, signals, descriptors, stdio, __main__ (ptdemo-state writes it
# all as JSON), with fresh random state. For each form a forked interpreter
# can run: python -m MODULE, python FILE, a console script.
. "$(dirname "$0")/lib.sh"

# readme FILE RUN: a README of the ptdemo-state service with the run command RUN
readme() {
    {
        echo '```text markpact:deps python'
        echo 'ptdemo-state'
        echo '```'
        echo '```python markpact:file path=state.py'
        echo 'import sys, ptdemo_state'
        echo 'sys.exit(ptdemo_state.main())'
        echo '```'
        echo '```bash markpact:run'
        echo "$2"
        echo '```'
    } >"$1"
}

# the fields a warm start must have as the cold one had them; its process
# group and session, in both, are those of the pid pactown recorded
compare() {
    python3 - "$1" "$2" "$3" <<'PY' || fail "$3: a warm start differs from the cold one"
import json, sys
cold, warm, what = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
bad = [k for k in cold if k not in ("random", "pgid", "sid", "service_pid") and cold[k] != warm[k]]
for k in bad:
    print("  %s: cold %r\n  %s  warm %r" % (k, cold[k], " " * len(k), warm[k]))
for s in (cold, warm):
    if not (s["pgid"] == s["sid"] == s["service_pid"]) or s["threads"] != 1:
        print("  process group %d, session %d, pactown's pid %d, threads %d" % (s["pgid"], s["sid"], s["service_pid"], s["threads"]))
        bad.append("group")
sys.exit(1 if bad else 0)
PY
}

# run_state ID FILE OUT ARGS...: pactown run --detach, the service's state (STATE_OUT) moved to OUT
# with the pid pactown recorded added, then stopped; the run's output in $out
run_state() {
    local id=$1 file=$2 dest=$3; shift 3
    rm -f "$WORK/state/state.json"
    out=$("$PACTOWN" run "$file" --service-id "$id" --port "$port" --detach --env STATE_OUT="$WORK/state/state.json" "$@" 2>&1) \
        || fail "run $id $*: $out"
    wait_until 10 test -f "$WORK/state/state.json" || fail "$id: the service wrote no state"
    assert_eq "$(http_status "http://127.0.0.1:$port/")" 200 "HTTP status of $id $*"
    local pid
    pid=$("$PACTOWN" ps --json | python3 -c "import json,sys; print([s['pid'] for s in json.load(sys.stdin) if s['id'] == '$id'][0])")
    python3 -c "
import json
s = json.load(open('$WORK/state/state.json'))
s['service_pid'] = $pid
json.dump(s, open('$dest', 'w'))"
    "$PACTOWN" stop "$id" >/dev/null || fail "stop $id"
}

mount_start
port=$(free_port)
mkdir -m 1777 "$WORK/state" # the services write what they see there (users' too)
n=0
for form in "python -m ptdemo_state" "python state.py" "ptdemo-state" "python3 state.py --flag 'two words' \$PORT"; do
    n=$((n + 1))
    readme "$WORK/s$n.md" "$form"
    id=s$n
    # cold, with warm off: the reference
    run_state $id "$WORK/s$n.md" "$WORK/cold$n.json" --no-warm
    grep -q ", warm)" <<<"$out" && fail "$form: --no-warm started warm: $out"
    # with warm on, the first time: cold again (no warm process yet), which starts the warm
    # process of the venv (the later forms find it running)
    run_state $id "$WORK/s$n.md" "$WORK/first$n.json" --warm
    [ $n -gt 1 ] || grep -q "warm: started the warm process" <<<"$out" || fail "$form: no warm process started: $out"
    compare "$WORK/cold$n.json" "$WORK/first$n.json" "$form (warm on, the first start)"
    for k in a b; do
        # the warm process listens once it has preloaded; until then a start is cold
        wait_until 30 sh -c "ls '$WORK/cache/warm/'*/preloaded 2>/dev/null | grep -q ." || fail "the warm process never got ready"
        run_state $id "$WORK/s$n.md" "$WORK/warm$n$k.json" --warm
        grep -q "running in .*, warm)" <<<"$out" || fail "$form: not started warm: $out"
        compare "$WORK/cold$n.json" "$WORK/warm$n$k.json" "$form"
    done
    python3 -c "
import json, sys
a, b, c = (json.load(open('$WORK/%s$n%s.json' % x))['random'] for x in (('cold', ''), ('warm', 'a'), ('warm', 'b')))
sys.exit(0 if len({a, b, c}) == 3 else 1)" || fail "$form: two starts have the same random state"
    say "$form: warm starts the same as cold"
done

# as a user: the warm process and its children have the user's uid, never root's
run_state u1 "$WORK/s1.md" "$WORK/ucold.json" --no-warm --user alice
run_state u1 "$WORK/s1.md" "$WORK/ufirst.json" --warm --user alice
grep -q "warm: started the warm process" <<<"$out" || fail "no warm process for alice: $out"
uid=$(python3 -c "import json; print(json.load(open('$WORK/ucold.json'))['ids'][0])")
[ "$uid" != 0 ] || fail "alice's service ran as root"
wait_until 30 sh -c "ls '$WORK'/cache/warm/*-$uid-*/preloaded >/dev/null 2>&1" || fail "alice's warm process never got ready"
zpid=$(cat "$WORK"/cache/warm/*-"$uid"-*/pid)
assert_eq "$(stat -c %u "/proc/$zpid")" "$uid" "the uid of alice's warm process"
run_state u1 "$WORK/s1.md" "$WORK/uwarm.json" --warm --user alice
grep -q "running in .*, warm)" <<<"$out" || fail "alice's start was not warm: $out"
compare "$WORK/ucold.json" "$WORK/uwarm.json" "python -m ptdemo_state as alice"

# a module that starts a thread while imported is dropped from the preload (named in the warm
# process's log), which starts again without it and then forks as before
{
    echo '```text markpact:deps python'; echo 'ptdemo-state'; echo 'ptdemo-thready'; echo '```'
    echo '```bash markpact:run'; echo 'python -m ptdemo_state'; echo '```'
} >"$WORK/t.md"
run_state t1 "$WORK/t.md" "$WORK/tcold.json" --no-warm
run_state t1 "$WORK/t.md" "$WORK/tfirst.json" --warm
tkey=$(basename "$(readlink "$WORK/sandboxes/t1/.venv")")
wait_until 30 sh -c "ls '$WORK'/cache/warm/$tkey-0-*/preloaded >/dev/null 2>&1" || fail "the warm process of $tkey never got ready"
grep -q "preload: ptdemo_thready dropped: it started a thread while imported; starting again without it" \
    "$WORK"/cache/warm/$tkey-0-*/zygote.log || fail "no log line for the dropped module: $(cat "$WORK"/cache/warm/$tkey-0-*/zygote.log)"
grep -qx ptdemo_thready "$WORK"/cache/warm/$tkey-0-*/preloaded && fail "ptdemo_thready was preloaded"
run_state t1 "$WORK/t.md" "$WORK/twarm.json" --warm
grep -q "running in .*, warm)" <<<"$out" || fail "not warm after the drop: $out"
compare "$WORK/tcold.json" "$WORK/twarm.json" "python -m ptdemo_state beside a thread-starting module"

# what starts cold, and says why
cold_because() { # README-RUN-FORM REASON [run options...]
    local form=$1 why=$2; shift 2
    readme "$WORK/c.md" "$form"
    out=$("$PACTOWN" run "$WORK/c.md" --service-id c --port "$port" --detach --warm "$@" 2>&1) || fail "$form: $out"
    grep -q ", warm)" <<<"$out" && fail "$form: started warm: $out"
    grep -qF "$why" <<<"$out" || fail "$form: no '$why' in: $out"
    "$PACTOWN" stop c >/dev/null
}
cold_because 'python -m ptdemo_state | cat' "warm: starting cold: the run command uses the shell"
cold_because 'cd . && python -m ptdemo_state' "warm: starting cold: the run command uses the shell"
cold_because 'python -m ptdemo_state' "sets PYTHONPATH, which a warm interpreter cannot take" --env PYTHONPATH=lib
# ptdemo_state reads PTDEMO_MODE while imported: another value than the warm process had is cold
cold_because 'python -m ptdemo_state' "has PTDEMO_MODE otherwise than when the warm process preloaded" \
    --env PTDEMO_MODE=other
# a module of the sandbox with the name of one the warm process imported: a cold start imports the sandbox's
printf '%s\n' '```python markpact:file path=ptdemo_state.py' 'raise SystemExit("the sandbox one")' '```' >>"$WORK/c.md"
out=$("$PACTOWN" run "$WORK/c.md" --service-id c --port "$port" --detach --warm 2>&1) && fail "the shadowed start ran: $out"
grep -qF "ptdemo_state.py in $WORK/sandboxes/c has the name of a module the warm process imported" <<<"$out" \
    || fail "no shadowing reason: $out"

# the warm process killed: the next start is cold and says so, and starts a new one
k1=$(basename "$(readlink "$WORK/sandboxes/s1/.venv")")
zdir=$(ls -d "$WORK"/cache/warm/$k1-0-*/ | sed -n 1p)
kill -KILL "$(cat "$zdir/pid")"
wait_until 10 sh -c "! kill -0 $(cat "$zdir/pid") 2>/dev/null" || fail "the warm process did not end"
run_state s1 "$WORK/s1.md" "$WORK/after-kill.json" --warm
grep -q "warm: no ready warm process" <<<"$out" || fail "no line about the missing warm process: $out"
grep -q "warm: started the warm process" <<<"$out" || fail "no new warm process: $out"
wait_until 30 test -f "$zdir/preloaded" || fail "the new warm process never got ready"
run_state s1 "$WORK/s1.md" "$WORK/after-kill2.json" --warm
grep -q "running in .*, warm)" <<<"$out" || fail "not warm after the new warm process: $out"

# a warm start's health probes are sent by the warm process's prober: this process maps no libcurl
# (nor TLS library); the prober stopped: libcurl sends them, and the start says so; the prober
# killed: the warm process forks another, and the next start's probes are its
port=$(free_port)
err=$(LD_DEBUG=libs "$PACTOWN" run "$WORK/s1.md" --service-id s1 --port "$port" --detach --warm 2>&1 >/dev/null) \
    || fail "warm run under LD_DEBUG: $(grep -v '^ *[0-9]*:' <<<"$err")"
grep -q "running in .*, warm)" <<<"$err" || fail "not warm: $(grep -v '^ *[0-9]*:' <<<"$err")"
loaded=$(sed -n 's/.*calling init: //p' <<<"$err" | grep -E 'libcurl|libssl|libgnutls|libcrypto' | tr '\n' ' ' || true)
[ -z "$loaded" ] || fail "a warm start loaded $loaded"
grep -q "warm: the warm process cannot send" <<<"$err" && fail "the prober did not answer: $(grep -v '^ *[0-9]*:' <<<"$err")"
"$PACTOWN" stop s1 >/dev/null
prober=$(sed -n 's/.*prober: pid \([0-9]*\)$/\1/p' "$zdir/zygote.log" | tail -n 1)
[ -n "$prober" ] && kill -0 "$prober" || fail "no prober in the warm process's log: $(cat "$zdir/zygote.log")"
kill -STOP "$prober"
run_state s1 "$WORK/s1.md" "$WORK/stopped-prober.json" --warm
kill -CONT "$prober"
grep -q "warm: the warm process cannot send the health probes (its prober did not answer within [0-9]* ms" <<<"$out" \
    || fail "no line about the stopped prober: $out"
grep -q "running in .*, warm)" <<<"$out" || fail "not healthy through libcurl with the prober stopped: $out"
kill -KILL "$prober"
wait_until 10 grep -q "prober: pid $prober ended" "$zdir/zygote.log" || fail "the warm process did not see its prober end"
run_state s1 "$WORK/s1.md" "$WORK/new-prober.json" --warm
grep -q "running in .*, warm)" <<<"$out" || fail "not warm after the prober was killed: $out"
grep -q "warm: the warm process cannot send" <<<"$out" && fail "no new prober: $out"
assert_eq "$(grep -c "prober: pid" "$zdir/zygote.log")" 3 "prober lines (the first, its end, a new one)"

# a warm process that answers with a pid that is not its child: ended, and the start is cold
kill -KILL "$(cat "$zdir/pid")"
sock="$WORK/cache/warm/$(basename "$zdir").sock"
rm -f "$sock"
python3 - "$sock" "$WORK/liar.ready" <<'PY' &
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1])
s.listen(1)
open(sys.argv[2], "w").close()
c, _ = s.accept()
c.recvmsg(1 << 20, 4096)
c.send(json.dumps({"pid": 1}).encode())
c.recv(1)
PY
EXTRA_PIDS="$EXTRA_PIDS $!"
wait_until 10 test -f "$WORK/liar.ready" || fail "the lying listener did not start"
out=$("$PACTOWN" run "$WORK/s1.md" --service-id s1 --port "$port" --detach --warm 2>&1) || fail "run after a lie: $out"
grep -q "answered with a pid that is not its child of this uid: ended it" <<<"$out" || fail "the lie was not caught: $out"
grep -q "running in .* -> 200)" <<<"$out" || fail "the start after the lie was not cold and healthy: $out"
"$PACTOWN" stop s1 >/dev/null

# cache prewarm --warm: the warm process started and ready before any run: the first start is warm
end_warm
out=$("$PACTOWN" cache prewarm --warm ptdemo-state 2>&1) || fail "cache prewarm --warm: $out"
grep -q "warm process ready (pid [0-9]*)" <<<"$out" || fail "cache prewarm --warm: $out"
out=$("$PACTOWN" cache prewarm --warm ptdemo-state 2>&1) || fail "cache prewarm --warm again: $out"
grep -q "warm process running (pid [0-9]*)" <<<"$out" || fail "cache prewarm --warm again: $out"
run_state p1 "$WORK/s1.md" "$WORK/p1.json" --warm
grep -q "running in .*, warm)" <<<"$out" || fail "the first start after prewarm --warm was not warm: $out"
# its memory counts in cache stats (and per venv in cache ls --json, cache show --json)
"$PACTOWN" cache stats --json | python3 -c "
import json, sys
w = json.load(sys.stdin)['warm']
assert w['processes'] == 1 and w['rss_bytes'] > 1 << 20, w" || fail "cache stats: $("$PACTOWN" cache stats --json)"
"$PACTOWN" cache stats | grep -q "^warm  *1 warm processes, .* resident" || fail "cache stats: $("$PACTOWN" cache stats)"
python3 -c "
import json, sys
w = json.load(open(sys.argv[1]))['warm']
assert w['processes'] == 1 and w['rss_bytes'] > 1 << 20, w" "$MNT/stats" || fail "the mount's stats: $(cat "$MNT/stats")"
kp=$(basename "$(readlink "$WORK/sandboxes/p1/.venv")")
"$PACTOWN" cache ls | grep "^${kp:0:12} " | grep -qE ' 1:[0-9.]+(KiB|MiB|GiB) ' \
    || fail "cache ls has no WARM figure for $kp: $("$PACTOWN" cache ls)"

# warm_idle_seconds: a warm process with no start and no child that long ends, and its lease with it
end_warm
warm_of() { "$PACTOWN" cache show "$1" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["warm"]))'; }
PACTOWN_WARM_IDLE_SECONDS=2 run_state s1 "$WORK/s1.md" "$WORK/idle.json" --warm
k1=$(basename "$(readlink "$WORK/sandboxes/s1/.venv")")
assert_eq "$(warm_of "$k1")" 1 "warm processes of $k1 after a start"
wait_until 20 sh -c "[ \"\$(\"$PACTOWN\" cache show $k1 --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d[\"warm\"]), d[\"leases\"])')\" = '0 0' ]" \
    || fail "the idle warm process did not end (or left its lease): $("$PACTOWN" cache show "$k1")"
grep -q "idle for 2 s: exiting" "$WORK"/cache/warm/$k1-0-*/zygote.log || fail "no idle line in the warm process's log"

# max_warm: one more than the limit ends the least recently used
PACTOWN_MAX_WARM=1 run_state s1 "$WORK/s1.md" "$WORK/m1.json" --warm
assert_eq "$(warm_of "$k1")" 1 "warm processes of $k1"
PACTOWN_MAX_WARM=1 run_state t1 "$WORK/t.md" "$WORK/m2.json" --warm
grep -q "warm: ended the least recently used warm process (${k1:0:12}, max_warm=1)" <<<"$out" \
    || fail "max_warm=1 did not end the other warm process: $out"
assert_eq "$(warm_of "$k1")" 0 "warm processes of $k1 after max_warm ended it"
assert_eq "$(warm_of "$tkey")" 1 "warm processes of $tkey"
pass
