# lib_stress.sh — shared by the stress tests (sourced, bash): the integration
# harness (tests/integration/lib.sh: temporary mount, cache, wheelhouse,
# cleanup at exit), plus:
#   * an unexpected failure under `set -e` prints FAIL with its line;
#   * at_exit CMD: run CMD at exit (before lib.sh's cleanup, also on failure);
#   * long mode: PACTOWN_LONG=1; `pick SHORT LONG` gives the figure for the mode;
#   * a seeded RNG: seed_rng sets SEED (PACTOWN_SEED or a fresh one), seeds
#     $RANDOM and prints it (read $RANDOM in the main shell only);
#   * pt ARGS: the pactown CLI, killed after 120 s;
#   * ms_since T0 (T0 from `date +%s%N`).
. "$(dirname "$0")/../integration/lib.sh"

set -E
trap '_rc=$?; printf "FAIL: %s: line %s: exit %s from: %s\n" "$T_NAME" "$LINENO" "$_rc" "$BASH_COMMAND"' ERR

STRESS_AT_EXIT=()
at_exit() { STRESS_AT_EXIT+=("$1"); }
_stress_exit() {
    local ec=$? h
    trap - ERR
    set +e
    for h in "${STRESS_AT_EXIT[@]}"; do eval "$h"; done
    (exit "$ec")
    cleanup
}
trap _stress_exit EXIT

LONG=${PACTOWN_LONG:-0}
pick() { if [ "$LONG" = 1 ]; then echo "$2"; else echo "$1"; fi; }

seed_rng() {
    SEED=${PACTOWN_SEED:-$(( $(date +%s%N) / 1000 % 2147483647 ))}
    RANDOM=$SEED
    say "seed $SEED (replay with PACTOWN_SEED=$SEED)"
}

# pt ARGS...: the pactown CLI with a deadline (a hang is a failure, not a stuck test)
pt() { timeout "${PT_TIMEOUT:-120}" "$PACTOWN" "$@"; }

T_START=$(date +%s%N)
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
