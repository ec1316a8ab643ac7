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
    rm -f "$WORK/state.json"
    out=$("$PACTOWN" run "$file" --service-id "$id" --port "$port" --detach --env STATE_OUT="$WORK/state.json" "$@" 2>&1) \
        || fail "run $id $*: $out"
    wait_until 10 test -f "$WORK/state.json" || fail "$id: the service wrote no state"
    assert_eq "$(http_status "http://127.0.0.1:$port/")" 200 "HTTP status of $id $*"
    local pid
    pid=$("$PACTOWN" ps --json | python3 -c "import json,sys; print([s['pid'] for s in json.load(sys.stdin) if s['id'] == '$id'][0])")
    python3 -c "
import json
s = json.load(open('$WORK/state.json'))
s['service_pid'] = $pid
json.dump(s, open('$dest', 'w'))"
    "$PACTOWN" stop "$id" >/dev/null || fail "stop $id"
}

mount_start
port=$(free_port)
n=0
for form in "python -m ptdemo_state" "python state.py" "ptdemo-state" "python3 state.py --flag 'two words' \$PORT"; do
    n=$((n + 1))
    readme "$WORK/s$n.md" "$form"
    id=s$n
    # cold, with warm off: the reference
    run_state $id "$WORK/s$n.md" "$WORK/cold$n.json" --no-warm
    echo "$out" | grep -q ", warm)" && fail "$form: --no-warm started warm: $out"
    # with warm on, the first time: cold again (no warm process yet), which starts the warm
    # process of the venv (the later forms find it running)
    run_state $id "$WORK/s$n.md" "$WORK/first$n.json" --warm
    [ $n -gt 1 ] || echo "$out" | grep -q "warm: started the warm process" || fail "$form: no warm process started: $out"
    compare "$WORK/cold$n.json" "$WORK/first$n.json" "$form (warm on, the first start)"
    for k in a b; do
        # the warm process listens once it has preloaded; until then a start is cold
        wait_until 30 sh -c "ls '$WORK/cache/warm/'*/preloaded 2>/dev/null | grep -q ." || fail "the warm process never got ready"
        run_state $id "$WORK/s$n.md" "$WORK/warm$n$k.json" --warm
        echo "$out" | grep -q "running in .*, warm)" || fail "$form: not started warm: $out"
        compare "$WORK/cold$n.json" "$WORK/warm$n$k.json" "$form"
    done
    python3 -c "
import json, sys
a, b, c = (json.load(open('$WORK/%s$n%s.json' % x))['random'] for x in (('cold', ''), ('warm', 'a'), ('warm', 'b')))
sys.exit(0 if len({a, b, c}) == 3 else 1)" || fail "$form: two starts have the same random state"
    say "$form: warm starts the same as cold"
done
pass
