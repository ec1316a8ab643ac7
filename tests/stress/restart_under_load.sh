#!/usr/bin/env bash
# Services keep answering while the daemon is stopped, upgraded and mounted
# again: three services started with `pactown run --detach`; a background
# poller GETs each one every ~20 ms during the whole procedure and must see no
# failure. Each cycle: unmount (fusermount3 -u, the daemon exits 0), wait
# until the services have been polled unmounted, "upgrade" (copy pactownfs
# and pactown-build into a new directory and start the daemon from the copy:
# a new binary path), mount again; then `pactown cache ls` lists the venvs and
# a new `pactown run` of a known README is a cache hit that answers.
# Cycles: 3 (PACTOWN_LONG=1: 20; PACTOWN_CYCLES=N overrides both).
. "$(dirname "$0")/lib_stress.sh"

CYCLES=${PACTOWN_CYCLES:-$(pick 3 20)}
POLL=$WORK/poll
mkdir -p "$POLL"
polls() { cat "$POLL/count" 2>/dev/null || echo 0; }
# wait_polls N: the poller did N more rounds from now
wait_polls() {
    local want=$(( $(polls) + $1 ))
    wait_until 30 sh -c "[ \$(cat '$POLL/count' 2>/dev/null || echo 0) -ge $want ]" \
        || fail "the poller made no progress (at $(polls) rounds, waiting for $want)"
}
stop_poller() {
    [ -n "${POLLER:-}" ] || return 0
    : >"$POLL/stop"
    wait "$POLLER" || true
    POLLER=
}

mount_start
declare -a PORTS IDS
i=0
for deps in "ptdemo-app" "ptdemo-app|ptdemo-extra" 'ptdemo-app; python_version >= "2.7"|ptdemo-core'; do
    i=$((i + 1))
    IFS='|' read -r -a reqs <<<"$deps"
    write_readme "$WORK/svc$i.md" "${reqs[@]}"
    port=$(free_port)
    pt run "$WORK/svc$i.md" --service-id "svc$i" --port "$port" --detach >"$WORK/run.out" 2>&1 \
        || fail "starting svc$i: $(cat "$WORK/run.out")"
    PORTS+=("$port")
    IDS+=("svc$i")
done
pids_before=$(pt ps --json | python3 -c 'import json,sys; print(sorted((s["id"], s["pid"]) for s in json.load(sys.stdin) if s["running"]))')
n_keys=$(pt cache ls --json | python3 -c 'import json,sys; print(sum(e["state"] == "ready" for e in json.load(sys.stdin)))')
assert_eq "$n_keys" 3 "ready venvs of the three services"

urls=()
for p in "${PORTS[@]}"; do urls+=("http://127.0.0.1:$p/"); done
python3 "$SRC/tests/fixtures/http_poller.py" "$POLL" 20 "${urls[@]}" &
POLLER=$!
at_exit stop_poller
wait_polls 10

down_ms=0 up_ms=0 hit_ms=0
for cycle in $(seq "$CYCLES"); do
    # stop: the daemon unmounts and exits 0 while the services run on
    t0=$(date +%s%N)
    mount_stop
    is_mounted "$MNT" && fail "cycle $cycle: still mounted after fusermount3 -u"
    wait_polls 10
    # upgrade: the same binaries from a new path
    new=$WORK/upgrade.$cycle
    mkdir -p "$new"
    cp "$BUILD/mount/pactownfs" "$BUILD/mount/pactown-build" "$new/"
    down_ms=$((down_ms + $(ms_since "$t0")))
    t1=$(date +%s%N)
    PACTOWNFS=$new/pactownfs mount_start
    up_ms=$((up_ms + $(ms_since "$t1")))
    assert_eq "$(readlink "/proc/$DAEMON_PID/exe")" "$new/pactownfs" "cycle $cycle: the daemon's executable"
    # the index and the cache after the restart
    pt cache ls >"$WORK/ls.out" 2>&1 || fail "cycle $cycle: pactown cache ls: $(cat "$WORK/ls.out")"
    assert_eq "$(grep -c ' ready ' "$WORK/ls.out")" 3 "cycle $cycle: ready venvs in pactown cache ls"
    # a new service on a known set: a cache hit, served by the upgraded daemon
    t2=$(date +%s%N)
    hp=$(free_port)
    pt run "$WORK/svc1.md" --service-id "hit$cycle" --port "$hp" --detach >"$WORK/run.out" 2>&1 \
        || fail "cycle $cycle: pactown run after the restart: $(cat "$WORK/run.out")"
    hit_ms=$((hit_ms + $(ms_since "$t2")))
    grep -q "cache hit" "$WORK/run.out" || fail "cycle $cycle: the run after the restart was not a cache hit: $(cat "$WORK/run.out")"
    assert_eq "$(http_status "http://127.0.0.1:$hp/")" 200 "cycle $cycle: the new service"
    pt stop "hit$cycle" >/dev/null
    wait_polls 10
    if [ -s "$POLL/failures.log" ]; then
        fail "cycle $cycle: the poller saw failures: $(head -n 5 "$POLL/failures.log")"
    fi
done
stop_poller
[ -f "$POLL/summary.json" ] || fail "the poller wrote no summary"
read -r rounds requests failures lat_max lat_mean < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["rounds"], d["requests"], d["failures"], d["latency_max_ms"], d["latency_mean_ms"])' "$POLL/summary.json")
[ "$failures" = 0 ] || fail "the poller saw $failures failed requests: $(head -n 5 "$POLL/failures.log")"
pids_after=$(pt ps --json | python3 -c 'import json,sys; print(sorted((s["id"], s["pid"]) for s in json.load(sys.stdin) if s["running"]))')
assert_eq "$pids_after" "$pids_before" "the services (ids and pids) after $CYCLES restarts"
say "$CYCLES restarts: unmount + upgrade $((down_ms / CYCLES)) ms, mount from the new path $((up_ms / CYCLES)) ms," \
    "cache-hit run $((hit_ms / CYCLES)) ms (averages)"
say "poller: $requests requests to ${#PORTS[@]} services in $rounds rounds, $failures failed," \
    "latency mean $lat_mean ms, max $lat_max ms; total $(( ($(date +%s%N) - T_START) / 1000000000 )) s"
pass
