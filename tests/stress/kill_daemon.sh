#!/usr/bin/env bash
# Crash at any point: rounds of "register a few new sets, start lookups that
# build them, SIGKILL the daemon after a random delay, mount again". After
# every round:
#   * no venv was ever served incomplete: every lookup that got a target saw a
#     store directory with its .pactown-key and the reference file list;
#   * every key listed in by-deps has a complete store directory (its file
#     list equals the reference build of its kind, made once at the start),
#     and the store holds nothing else (no half-built or renamed-aside dirs)
#     but the builder's uv cache, .uv;
#   * the index opens (`pactown cache ls --json`), no entry is left building
#     or failed, and no builder of the killed daemon is left running;
#   * a random registered key builds (or is served) on its next lookup.
# At the end every registered key is looked up and must build.
# Seeded: PACTOWN_SEED=S replays a run (delays, sets, lookups).
# Rounds: 50 (PACTOWN_LONG=1: 500; PACTOWN_ROUNDS=N overrides both).
. "$(dirname "$0")/lib_stress.sh"

ROUNDS=${PACTOWN_ROUNDS:-$(pick 50 500)}
seed_rng   # $RANDOM is only read in this shell, never in a subshell
say "$ROUNDS rounds"
STORE=$WORK/cache/store

# three kinds of set; N makes each set its own key (the marker is always true)
KINDS=(extra app core)
declare -A MOD=([extra]=ptdemo_extra [app]=ptdemo_app [core]=ptdemo_core)
set_req() {
    case $1 in
    extra) printf 'ptdemo-extra; python_version >= "2.%d"' "$2" ;;
    app) printf 'ptdemo-app; python_version >= "2.%d"' "$2" ;;
    core) printf 'ptdemo-core==1.0; python_version >= "2.%d"' "$2" ;;
    esac
}
declare -A KIND     # key -> kind
declare -A VERIFIED # keys whose store directory was checked complete
KEYS=()             # every registered key, in order
NEXT_N=1
new_key() {         # new_key KIND: register a new set, append its key to KEYS
    local k
    k=$(pt hash --register "$(set_req "$1" "$NEXT_N")" | sed -n 's/^key //p') || fail "register a $1 set"
    [ -n "$k" ] || fail "register printed no key"
    NEXT_N=$((NEXT_N + 1))
    KIND[$k]=$1
    KEYS+=("$k")
}

flist() { (cd "$1" && find . -mindepth 1 -printf '%P %y\n' | LC_ALL=C sort); }

# check_dir KEY DIR: DIR is a complete venv of KEY (marker, reference file list)
check_dir() {
    local k=$1 d=$2
    [ "$(cat "$d/.pactown-key" 2>/dev/null)" = "$k" ] || { echo "$d has no .pactown-key for $k"; return 1; }
    flist "$d" | diff -q - "$WORK/ref.${KIND[$k]}" >/dev/null || {
        echo "$d: file list differs from the reference ${KIND[$k]} build:"
        flist "$d" | diff - "$WORK/ref.${KIND[$k]}" | head -n 10
        return 1
    }
}

# lookup KEY: resolve by-deps/KEY (the daemon builds it) and check what was
# served, by its store path (independent of the daemon from there on).
# Prints "ok KEY", "lost KEY" (no answer: the daemon was killed) or "BAD KEY reason".
lookup() {
    local k=$1 t why
    t=$(timeout 120 realpath -e "$MNT/by-deps/$k" 2>/dev/null) || { echo "lost $k"; return 0; }
    [ "$t" = "$STORE/$k" ] || { echo "BAD $k served target $t"; return 0; }
    if ! why=$(check_dir "$k" "$t"); then
        echo "BAD $k served incomplete: $why" | tr '\n' ' '; echo; return 0
    fi
    "$t/bin/python" -c "import ${MOD[${KIND[$k]}]}" 2>/dev/null || { echo "BAD $k served, import fails"; return 0; }
    echo "ok $k"
}

# the state after a (re)mount, before anything is looked up
check_state() {
    local what=$1 ls listed stored k
    ls=$(pt cache ls --json 2>"$WORK/ls.err") || fail "$what: pactown cache ls --json: $(cat "$WORK/ls.err")"
    echo "$ls" | python3 -c '
import json, sys
bad = [(e["key"], e["state"]) for e in json.load(sys.stdin) if e["state"] not in ("ready", "none")]
if bad:
    sys.exit("entries neither ready nor none: %s" % bad)' || fail "$what: index after recovery"
    listed=$(ls "$MNT/by-deps" | LC_ALL=C sort | tr '\n' ' ')
    declare -A now=()
    for k in $listed; do
        [ -n "${KIND[$k]:-}" ] || fail "$what: by-deps lists an unknown key $k"
        now[$k]=1
        # a verified venv is read-only: its marker is enough from then on
        if [ -n "${VERIFIED[$k]:-}" ]; then
            [ -f "$STORE/$k/.pactown-key" ] || fail "$what: $k lost its .pactown-key"
        else
            why=$(check_dir "$k" "$STORE/$k") || fail "$what: by-deps lists $k but: $why"
            VERIFIED[$k]=1
        fi
    done
    # nothing is evicted here: a venv once complete stays ready across kills
    for k in "${!VERIFIED[@]}"; do
        [ -n "${now[$k]:-}" ] || fail "$what: $k was built and complete, and is no longer listed"
    done
    # the store holds the venvs and the builder's uv cache (.uv), nothing else
    stored=$(ls -A "$STORE" | grep -vx '\.uv' | LC_ALL=C sort | tr '\n' ' ')
    [ "$stored" = "$listed" ] || fail "$what: store holds [$stored], by-deps lists [$listed]"
    # nothing was looked up since the mount: any builder is one of the killed daemon's
    wait_until 10 sh -c "! pgrep -f '[p]actown-build --store $STORE'" \
        || fail "$what: a builder of the killed daemon is still running: $(pgrep -af '[p]actown-build')"
}

# no eviction (a long run outlasts min_idle_seconds): every key stays built
OPTS=(-o max_entries=0)
mount_start "${OPTS[@]}"

# reference builds: one set of each kind, built undisturbed
for kind in "${KINDS[@]}"; do
    new_key "$kind"
    k=${KEYS[-1]}
    "$MNT/by-deps/$k/bin/python" -c "import ${MOD[$kind]}" || fail "reference build of $kind"
    flist "$STORE/$k" >"$WORK/ref.$kind"
    grep -qx '.pactown-key f' "$WORK/ref.$kind" || fail "the reference $kind build has no .pactown-key"
done
[ "$("$STORE/${KEYS[2]}/bin/python" -c 'import ptdemo_core; print(ptdemo_core.VERSION)')" = 1.0 ] \
    || fail "ptdemo-core==1.0 did not install version 1.0"

kills=0 served=0 lost=0 phase_none=0 phase_building=0 phase_ready=0
for round in $(seq "$ROUNDS"); do
    # a few new sets, plus maybe an older key (unbuilt if a kill interrupted it)
    n_new=$((1 + RANDOM % 3))
    round_keys=()
    for _ in $(seq "$n_new"); do
        new_key "${KINDS[RANDOM % 3]}"
        round_keys+=("${KEYS[-1]}")
    done
    round_keys+=("${KEYS[RANDOM % ${#KEYS[@]}]}")
    delay_ms=$((RANDOM % 801))
    : >"$WORK/round.out"
    pids=()
    for k in "${round_keys[@]}"; do
        for _ in $(seq $((1 + RANDOM % 2))); do
            lookup "$k" >>"$WORK/round.out" 2>&1 &
            pids+=($!)
        done
    done
    sleep "$(printf '0.%03d' "$delay_ms")"
    kill -KILL "$DAEMON_PID"
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=
    # what the kill interrupted (for the figures; the index opens without the daemon)
    ls_out=$(pt cache ls --json 2>"$WORK/ls.err") \
        || fail "round $round: the index does not open after the kill: $(cat "$WORK/ls.err")"
    st=$(echo "$ls_out" | python3 -c '
import json, sys
s = {e["key"]: e["state"] for e in json.load(sys.stdin)}
ks = sys.argv[1:]
print("building" if any(s.get(k) == "building" for k in ks) else
      "ready" if all(s.get(k) == "ready" for k in ks) else "none")' "${round_keys[@]}")
    kills=$((kills + 1))
    eval "phase_$st=\$((phase_$st + 1))"
    for p in "${pids[@]}"; do wait "$p" || true; done
    if grep -q '^BAD' "$WORK/round.out"; then
        fail "round $round (seed $SEED, kill after $delay_ms ms): $(grep '^BAD' "$WORK/round.out" | head -n 3)"
    fi
    served=$((served + $(grep -c '^ok' "$WORK/round.out" || true)))
    lost=$((lost + $(grep -c '^lost' "$WORK/round.out" || true)))

    mount_start "${OPTS[@]}"
    check_state "round $round (seed $SEED, kill after $delay_ms ms)"
    # a random registered key builds (or is served) on its next lookup
    k=${KEYS[RANDOM % ${#KEYS[@]}]}
    out=$(lookup "$k")
    case $out in ok*) served=$((served + 1)) ;; *) fail "round $round: next lookup of $k: $out" ;; esac
    if [ $((round % 10)) = 0 ] || [ "$round" = "$ROUNDS" ]; then
        say "round $round/$ROUNDS: $kills kills, ${#KEYS[@]} keys, $served lookups served, $lost cut by a kill"
    fi
done

# every registered key builds on its next lookup, and is complete
t_final=$(date +%s%N)
n_final=0
for k in "${KEYS[@]}"; do
    if [ -n "${VERIFIED[$k]:-}" ]; then   # built and checked: served as it is
        [ "$(timeout 120 realpath -e "$MNT/by-deps/$k")" = "$STORE/$k" ] || fail "final lookup of built $k"
        continue
    fi
    out=$(lookup "$k")
    case $out in ok*) n_final=$((n_final + 1)) ;; *) fail "final lookup of $k (${KIND[$k]}): $out" ;; esac
done
check_state "at the end"
n_ready=$(ls "$MNT/by-deps" | wc -l)
assert_eq "$n_ready" "${#KEYS[@]}" "ready keys at the end"
builds=$(pt cache stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["builds"])')
failures=$(pt cache stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["build_failures"])')
assert_eq "$failures" 0 "build failures"
say "kills interrupted: $phase_none before any build, $phase_building during a build, $phase_ready after all were built"
say "${#KEYS[@]} keys, $served lookups served complete, $lost cut by a kill; final check (built $n_final) $(( ($(date +%s%N) - t_final) / 1000000 )) ms;" \
    "total $(( ($(date +%s%N) - T_START) / 1000000000 )) s"
echo "kill_daemon: $kills kills survived, $builds builds, seed $SEED"
mount_stop
pass
