#!/usr/bin/env bash
# `pactown run` killed mid-sandbox: each round writes a new version of a README
# with 200 markpact:file blocks (content differs per version), starts
# `pactown run` on it and SIGKILLs it after a random delay (seeded) — mostly
# while it writes the sandbox — then runs it again to the end. After the
# second run the sandbox is complete and correct (every file has the new
# version's content, no *.pactown-tmp.* file is left) and the service answers.
# Rounds: 30 (PACTOWN_LONG=1: 300; PACTOWN_ROUNDS=N overrides both).
# Seeded: PACTOWN_SEED=S replays the delays.
. "$(dirname "$0")/lib_stress.sh"

ROUNDS=${PACTOWN_ROUNDS:-$(pick 30 300)}
seed_rng
say "$ROUNDS rounds"
GEN=$SRC/tests/fixtures/many_files_readme.py
command -v curl >/dev/null || skip "curl is not installed"
SVC=svc
SANDBOX=$WORK/sandboxes/$SVC

# stop what a killed run may have started: the recorded service, or a service
# the run spawned before it could record it (found by its working directory);
# sets STOPPED (recorded services stopped) and UNRECORDED (found by cwd)
running() {  # running PID...: one of them is alive (and not a zombie)
    local p st
    for p in "$@"; do
        st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1) || continue
        [ -n "$st" ] && [ "$st" != Z ] && return 0
    done
    return 1
}
gone() { ! running "$@"; }
stop_leftovers() {
    local p pids
    STOPPED=0
    [ "$(pt stop "$SVC" 2>/dev/null || true)" = "stopped $SVC" ] && STOPPED=1
    pids=$(find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$SANDBOX" 2>/dev/null | cut -d/ -f3 || true)
    for p in $pids; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true; done
    # shellcheck disable=SC2086
    [ -z "$pids" ] || wait_until 10 gone $pids \
        || fail "a service left by a killed run does not go away: $(ps -o pid,stat,args -p "${pids//$'\n'/,}")"
    UNRECORDED=$(echo $pids | wc -w)
}

run_to_end() {   # run_to_end README PORT: the whole run, detached; its output in $WORK/run.out
    pt run "$1" --service-id "$SVC" --port "$2" --detach >"$WORK/run.out" 2>&1
}

mount_start

# calibration: a first run builds the venv; then three cache-hit runs, the
# quickest of which sets the range of the kill delays (its sandbox time)
python3 "$GEN" gen "$WORK/v0.md" v0
port=$(free_port)
run_to_end "$WORK/v0.md" "$port" || fail "first run: $(cat "$WORK/run.out")"
stop_leftovers
ready_ms=
for _ in 1 2 3; do
    run_to_end "$WORK/v0.md" "$port" || fail "a cache-hit run: $(cat "$WORK/run.out")"
    grep -q "cache hit" "$WORK/run.out" || fail "the second run was not a cache hit: $(cat "$WORK/run.out")"
    ms=$(sed -n 's/^pactown: sandbox ready in \([0-9]*\)\..*/\1/p' "$WORK/run.out")
    [ -n "$ms" ] || fail "no 'sandbox ready' line: $(cat "$WORK/run.out")"
    python3 "$GEN" check "$SANDBOX" v0 || fail "the sandbox of an uninterrupted run"
    stop_leftovers
    [ -n "$ready_ms" ] && [ "$ready_ms" -le "$ms" ] || ready_ms=$ms
done
range_us=$(( (ready_ms + ready_ms / 10 + 5) * 1000 ))
say "calibration: a cache-hit run has its sandbox ready in $ready_ms ms at best; kills at 0..$((range_us / 1000)) ms"

mid=0 before=0 after=0 orphans=0 unrecorded=0 leftover_tmp=0 reruns_ms=0
for round in $(seq "$ROUNDS"); do
    v=v$round
    python3 "$GEN" gen "$WORK/$v.md" "$v"
    port=$(free_port)
    delay_us=$(( (RANDOM * 32768 + RANDOM) % range_us ))
    "$PACTOWN" run "$WORK/$v.md" --service-id "$SVC" --port "$port" --detach >"$WORK/killed.out" 2>&1 &
    runner=$!
    sleep "$(printf '%d.%06d' $((delay_us / 1000000)) $((delay_us % 1000000)))"
    kill -KILL "$runner" 2>/dev/null || true
    wait "$runner" 2>/dev/null || true
    # where the kill landed: files of the new version, of the old one, temp files
    read -r new old tmp < <(python3 "$GEN" state "$SANDBOX" "$v")
    if [ "$tmp" -gt 0 ] || { [ "$new" -gt 0 ] && [ "$old" -gt 0 ]; }; then
        mid=$((mid + 1))
    elif [ "$new" = 0 ]; then
        before=$((before + 1))
    else
        after=$((after + 1))
    fi
    leftover_tmp=$((leftover_tmp + tmp))
    stop_leftovers
    orphans=$((orphans + STOPPED))
    unrecorded=$((unrecorded + UNRECORDED))

    t0=$(date +%s%N)
    run_to_end "$WORK/$v.md" "$port" \
        || fail "round $round (seed $SEED, kill after $((delay_us / 1000)) ms): the run after the kill: $(cat "$WORK/run.out")"
    reruns_ms=$(( reruns_ms + ($(date +%s%N) - t0) / 1000000 ))
    why=$(python3 "$GEN" check "$SANDBOX" "$v") \
        || fail "round $round (seed $SEED, kill after $((delay_us / 1000)) ms, left $new new, $old old, $tmp temp files): sandbox after the next run: $why"
    case $(readlink "$SANDBOX/.venv") in "$MNT/by-deps/"*) ;; *) fail "round $round: .venv is $(readlink "$SANDBOX/.venv")" ;; esac
    assert_eq "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$port/" || true)" 200 \
        "round $round: the service after the next run"
    pt stop "$SVC" >/dev/null || fail "round $round: pactown stop"
    rm -f "$WORK/$v.md"
    if [ $((round % 10)) = 0 ]; then
        say "round $round/$ROUNDS: kills mid-sandbox $mid, before it $before, after it $after"
    fi
done
say "$ROUNDS kills: $mid mid-sandbox (mixed versions or temp files left), $before before the first file, $after after the last;" \
    "$leftover_tmp temp files left by kills; services a killed run had started: $orphans recorded (pactown stop), $unrecorded unrecorded processes (killed by hand)"
say "$ROUNDS runs after a kill, $((reruns_ms / ROUNDS)) ms each on average; total $(( ($(date +%s%N) - T_START) / 1000000000 )) s"
echo "kill_run: $ROUNDS kills, $mid mid-sandbox, sandbox complete after every next run, seed $SEED"
pass
