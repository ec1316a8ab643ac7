#!/usr/bin/env bash
# Many writers of the LMDB index at once, and single-flight builds under load.
#
# Phase 1 (daemon mounted with max_entries=3, min_idle_seconds=0,
# evict_interval=1, so it builds and evicts all the time), four loops in
# parallel for thousands of operations:
#   register  `pactown hash --register` of distinct sets
#   lease     `pactown lease add` / `lease rm` on a built key (for a holder process)
#   prewarm   `pactown cache prewarm` of three built sets, one of them the leased
#             key (a hit each time the set is built; rebuilt when the daemon
#             evicted it)
#   daemon    lookups of new sets (the daemon builds them, then evicts the
#             least recently used), with `pactown cache gc` now and then
# then: every operation succeeded; no lost update (the hits counter and the
# per-entry hits equal the prewarms of built sets; every registered key is
# listed by `pactown cache ls`; every lease rm found its lease); mdb_stat and
# mdb_dump read the index; everything finished within the deadline (no deadlock).
# Phase 2 (mounted again without eviction pressure): 64 concurrent lookups of
# 8 new keys (8 each, released together through a FIFO) build each key once.
# Sizes: 500 iterations per loop (PACTOWN_LONG=1: 5000; PACTOWN_OPS=N overrides).
. "$(dirname "$0")/lib_stress.sh"

OPS=${PACTOWN_OPS:-$(pick 500 5000)}
DAEMON_SETS=$(( OPS / 20 + 5 ))
DEADLINE_S=$(pick 600 3600)
if ! command -v mdb_stat >/dev/null || ! command -v mdb_dump >/dev/null; then
    apt-get install -y -qq lmdb-utils >/dev/null 2>&1 || true
    command -v mdb_stat >/dev/null && command -v mdb_dump >/dev/null || skip "mdb_stat/mdb_dump (lmdb-utils) not installed"
fi
say "$OPS iterations per loop, $DAEMON_SETS sets built by the daemon, deadline $DEADLINE_S s"
OUT=$WORK/out
command -v fuser >/dev/null || skip "fuser (psmisc) is not installed"
mkdir -p "$OUT"
json_of() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

mount_start -o max_entries=3 -o min_idle_seconds=0 -o evict_interval=1

req() { printf '%s; python_version >= "2.%d"' "$1" "$2"; }
# the built keys the lease and prewarm loops work on
hot=()
for n in 1 2 3; do
    k=$(pt cache prewarm "$(req ptdemo-extra "$n")" | cut -d' ' -f1) || fail "prewarm of hot set $n"
    hot+=("$k")
done
KL=${hot[0]}
sleep 3600 &
HOLDER=$!
at_exit "kill $HOLDER 2>/dev/null"
pt lease add "$KL" --pid "$HOLDER" --holder stress || fail "lease add"
pt lease rm "$KL" --pid "$HOLDER" || fail "lease rm"
hits0=$(pt cache stats --json | json_of 'd["hits"]')
assert_eq "$hits0" 0 "hits before the loops"

# ---- the four loops; each writes "<done> <failed>" to $OUT/<name>.res ----
loop_register() {
    set +e
    local i ok=0 bad=0 k
    for i in $(seq "$OPS"); do
        k=$(pt hash --register "$(req ptdemo-app $((100000 + i)))" 2>>"$OUT/register.err" | sed -n 's/^key //p')
        if [ -n "$k" ]; then echo "$k" >>"$OUT/register.keys"; ok=$((ok + 1)); else bad=$((bad + 1)); fi
    done
    echo "$ok $bad" >"$OUT/register.res"
}
loop_lease() {
    set +e
    local i ok=0 bad=0
    for i in $(seq "$OPS"); do
        if pt lease add "$KL" --pid "$HOLDER" --holder stress 2>>"$OUT/lease.err"; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
        if pt lease rm "$KL" --pid "$HOLDER" 2>>"$OUT/lease.err"; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
    done
    echo "$ok $bad" >"$OUT/lease.res"
}
loop_prewarm() {
    set +e
    local i ok=0 bad=0 line
    for i in $(seq "$OPS"); do
        if line=$(pt cache prewarm "$(req ptdemo-extra $((1 + i % 3)))" 2>>"$OUT/prewarm.err"); then
            ok=$((ok + 1))
            echo "$line" >>"$OUT/prewarm.lines"
        else
            bad=$((bad + 1))
        fi
    done
    echo "$ok $bad" >"$OUT/prewarm.res"
}
loop_daemon() {
    set +e
    local i ok=0 bad=0 k
    for i in $(seq "$DAEMON_SETS"); do
        k=$(pt hash --register "$(req ptdemo-core==1.0 $((200000 + i)))" 2>>"$OUT/daemon.err" | sed -n 's/^key //p')
        echo "$k" >>"$OUT/daemon.keys"
        if "$MNT/by-deps/$k/bin/python" -c 'import ptdemo_core' 2>>"$OUT/daemon.err"; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
        if [ $((i % 5)) = 0 ]; then
            if pt cache gc >/dev/null 2>>"$OUT/daemon.err"; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
        fi
    done
    echo "$ok $bad" >"$OUT/daemon.res"
}

t0=$(date +%s%N)
loops=()
for name in register lease prewarm daemon; do
    "loop_$name" &
    loops+=($!)
done
at_exit 'for p in "${loops[@]}"; do kill "$p" 2>/dev/null; done'
all_done() { local p; for p in "${loops[@]}"; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
if ! wait_until "$DEADLINE_S" all_done; then
    ps -eo pid,stat,wchan:32,args | grep -E '[p]actown' | head -n 20
    fail "the loops did not finish within $DEADLINE_S s (a deadlock?)"
fi
for p in "${loops[@]}"; do wait "$p" || true; done
loops_ms=$(ms_since "$t0")

total_ok=0
for name in register lease prewarm daemon; do
    [ -f "$OUT/$name.res" ] || fail "the $name loop wrote no result"
    read -r ok bad <"$OUT/$name.res"
    say "loop $name: $ok operations, $bad failed"
    [ "$bad" = 0 ] || fail "$bad operations of the $name loop failed: $(sort "$OUT/$name.err" | uniq -c | sort -rn | head -n 5)"
    total_ok=$((total_ok + ok))
done
say "phase 1: $total_ok operations in $loops_ms ms ($(( total_ok * 1000 / (loops_ms + 1) )) per second)"

# no lost update: hits
n_hits=$(grep -c ' already built ' "$OUT/prewarm.lines" || true)
n_built=$(grep -c '^[0-9a-f]* built in ' "$OUT/prewarm.lines" || true)
stats=$(pt cache stats --json)
assert_eq "$(echo "$stats" | json_of 'd["hits"]')" "$n_hits" "hits counter after $n_hits prewarms of built sets"
assert_eq "$(pt cache ls --json | json_of 'sum(e["hits"] for e in d)')" "$n_hits" "sum of the entries' hits"
# every registered key is listed
pt cache ls --json | json_of '"\n".join(e["key"] for e in d)' | sort >"$OUT/listed"
sort -u "$OUT/register.keys" "$OUT/daemon.keys" >"$OUT/registered"
printf '%s\n' "${hot[@]}" >>"$OUT/registered"
sort -u -o "$OUT/registered" "$OUT/registered"
missing=$(comm -23 "$OUT/registered" "$OUT/listed" | wc -l)
[ "$missing" = 0 ] || fail "$missing of $(wc -l <"$OUT/registered") registered keys are not listed by pactown cache ls (e.g. $(comm -23 "$OUT/registered" "$OUT/listed" | head -n 1))"
# leases: every rm found its lease, none is left
assert_eq "$(pt lease ls --json | json_of "sum(l['pid'] == $HOLDER for l in d)")" 0 "leases of the holder left"
# the daemon kept its limits: wait for the eviction thread to settle (at most 3 ready)
wait_until 20 sh -c "[ \$(timeout 60 '$PACTOWN' cache ls --json | python3 -c 'import json,sys; print(sum(e[\"state\"] == \"ready\" for e in json.load(sys.stdin)))') -le 3 ]" \
    || fail "more than max_entries=3 ready venvs: $(pt cache ls)"
evictions=$(echo "$stats" | json_of 'd["evictions"]')
builds=$(echo "$stats" | json_of 'd["builds"]')
[ "$(echo "$stats" | json_of 'd["build_failures"]')" = 0 ] || fail "build failures: $stats"
say "prewarms: $n_hits of built sets (hits), $n_built rebuilt after an eviction; daemon: $builds builds, $evictions evictions"

# the index reads with the LMDB tools (daemon still mounted)
mdb_stat -e -a "$WORK/cache/index" >"$OUT/mdb_stat" 2>&1 || fail "mdb_stat: $(cat "$OUT/mdb_stat")"
mdb_dump -a "$WORK/cache/index" >"$OUT/mdb_dump" 2>&1 || fail "mdb_dump: $(tail -n 3 "$OUT/mdb_dump")"
n_spec=$(awk '/^Status of spec/ {f=1} f && /Entries:/ {print $2; exit}' "$OUT/mdb_stat")
[ "${n_spec:-0}" -ge "$(wc -l <"$OUT/registered")" ] || fail "mdb_stat: $n_spec specs for $(wc -l <"$OUT/registered") registered keys"
say "mdb_stat: $n_spec specs; mdb_dump: $(wc -c <"$OUT/mdb_dump") bytes"

# ---- phase 2: 64 lookups of 8 new keys, released together ----
mount_stop
mount_start
builds0=$(pt cache stats --json | json_of 'd["builds"]')
keys8=()
for n in $(seq 8); do keys8+=("$(register "$(req ptdemo-extra $((300000 + n)))")"); done
go=$WORK/go
mkfifo "$go"
pids=()
for k in "${keys8[@]}"; do
    for _ in $(seq 8); do
        ( cat "$go" >/dev/null; "$MNT/by-deps/$k/bin/python" -c 'import ptdemo_extra' ) 2>>"$OUT/lookups.err" &
        pids+=($!)
    done
done
# release all 64 at once: the readers' open completes when this writer
# opens; once all have it open, closing it gives them all EOF together
at_exit "exec 4<>'$go'; exec 4>&-; kill \${pids[*]} 2>/dev/null"
exec 3>"$go"
wait_until 30 sh -c "[ \$(fuser '$go' 2>/dev/null | wc -w) -ge 65 ]" \
    || fail "only $(($(fuser "$go" 2>/dev/null | wc -w) - 1)) of 64 lookups opened the fifo"
t2=$(date +%s%N)
exec 3>&-
n_fail=0
for p in "${pids[@]}"; do wait "$p" || n_fail=$((n_fail + 1)); done
lookups_ms=$(ms_since "$t2")
[ "$n_fail" = 0 ] || fail "$n_fail of 64 concurrent lookups failed: $(head -n 3 "$OUT/lookups.err")"
pt cache ls --json >"$OUT/ls8"
for k in "${keys8[@]}"; do
    assert_eq "$(json_of "[e['builds'] for e in d if e['key'] == '$k']" <"$OUT/ls8")" "[1]" "builds of $k after 8 concurrent lookups"
    assert_eq "$(grep -c '^pactown-build: building' "$MNT/logs/$k.log")" 1 "builder runs in the log of $k"
done
assert_eq "$(pt cache stats --json | json_of 'd["builds"]')" "$((builds0 + 8))" "builds counter after 64 lookups of 8 keys"
say "phase 2: 64 concurrent lookups of 8 keys in $lookups_ms ms, 8 builds"
say "total $(( $(ms_since "$T_START") / 1000 )) s"
pass
