#!/usr/bin/env bash
# Eviction (issue: never pull a venv from under a running service):
# LRU order with max_entries, leases, rebuild after eviction, access times and
# counters across restarts, max_age_hours and max_bytes, cache rm refusals,
# and lookups during evictions that see the whole venv or a rebuild.
. "$(dirname "$0")/lib.sh"
LIMITS=(-o min_idle_seconds=0 -o evict_interval=3600 -o atime_throttle=0 -o wheel_keep_hours=0)
mount_start -o max_entries=3 "${LIMITS[@]}"

# set N: ptdemo-extra with a marker that is always true, so each N is its own key
set_req() { printf 'ptdemo-extra; python_version >= "2.%d"' "$1"; }
prewarm() { "$PACTOWN" cache prewarm "$(set_req "$1")" 2>>"$WORK/prewarm.log" | cut -d' ' -f1; }
ready_keys() { "$PACTOWN" cache ls --json | python3 -c '
import json, sys
print(" ".join(sorted(e["key"] for e in json.load(sys.stdin) if e["state"] == "ready")))'; }
sorted_keys() { printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }

# five sets used in a known order: 1 2 3, then 1 again, then 4 and 5
k1=$(prewarm 1); k2=$(prewarm 2); k3=$(prewarm 3)
[ "$(prewarm 1)" = "$k1" ] || fail "prewarm of a built set changed its key"
k4=$(prewarm 4); k5=$(prewarm 5)
"$PACTOWN" cache gc >/dev/null || fail "cache gc"
want=$(sorted_keys "$k1" "$k4" "$k5")
wait_until 10 sh -c "[ \"\$(\"$PACTOWN\" cache ls --json | python3 -c 'import json,sys; print(\" \".join(sorted(e[\"key\"] for e in json.load(sys.stdin) if e[\"state\"] == \"ready\")))')\" = '$want' ]" \
    || fail "after five sets with max_entries=3: ready $(ready_keys), expected $want (the three most recently used)"
assert_eq "$(ls "$MNT/by-deps" | sort | tr '\n' ' ' | sed 's/ $//')" "$want" "by-deps listing after eviction"
wait_until 10 sh -c "[ ! -e '$WORK/cache/store/$k2' ] && [ ! -e '$WORK/cache/store/$k3' ]" \
    || fail "evicted venvs are still in the store"
ls "$WORK/cache/store" | grep -q '^\.trash' && fail "a renamed-aside venv was left in the store"
assert_eq "$(stat_json evictions)" 2 "evictions counter"
"$PACTOWN" cache show "$k2" | grep -q "^state none" || fail "cache show of an evicted key"

# a running service keeps its venv however many newer sets come
write_readme "$WORK/svc.md" ptdemo-app
port=$(free_port)
"$PACTOWN" run "$WORK/svc.md" --service-id svc --port "$port" --detach >/dev/null 2>&1 || fail "run svc"
ksvc=$(basename "$(readlink "$WORK/sandboxes/svc/.venv")")
for n in 6 7 8 9 10 11; do prewarm "$n" >/dev/null; "$PACTOWN" cache gc >/dev/null; done
"$PACTOWN" cache ls --json | python3 -c "
import json, sys
e = {x['key']: x for x in json.load(sys.stdin)}['$ksvc']
assert e['state'] == 'ready' and e['leases'] - len(e['warm']) == 1, e" || fail "the leased venv of a running service was evicted"
assert_eq "$(http_status "http://127.0.0.1:$port/")" 200 "the service after six newer sets"
set +e; "$PACTOWN" cache rm "$ksvc" >/dev/null 2>&1; rc=$?; set -e
assert_eq "$rc" 9 "exit code of cache rm on a leased venv"

# once the service stops, its venv can go (it is the least recently used
# when one more set comes); the same sandbox started again rebuilds it
"$PACTOWN" stop svc >/dev/null
end_warm
prewarm 16 >/dev/null
"$PACTOWN" cache gc >/dev/null
# (the eviction thread, woken by the build, may be the one removing it: wait for it)
wait_until 10 test ! -e "$WORK/cache/store/$ksvc" \
    || fail "the venv of a stopped service was not evicted: $("$PACTOWN" cache ls; "$PACTOWN" lease ls)"
out=$("$PACTOWN" run "$WORK/svc.md" --service-id svc --port "$port" --detach 2>&1) || fail "rerun after eviction: $out"
grep -q "cache miss" <<<"$out" || fail "the rerun after eviction was not a rebuild: $out"
assert_eq "$(http_status "http://127.0.0.1:$port/")" 200 "the service after its venv was rebuilt"
"$PACTOWN" stop svc >/dev/null

# access times and counters survive a restart of the daemon
before=$("$PACTOWN" cache ls --json | python3 -c 'import json,sys; print(sorted((e["key"], e["last_access"], e["hits"], e["state"]) for e in json.load(sys.stdin)))')
stats_before=$(python3 -c "import json; d = json.load(open('$MNT/stats')); print(d['hits'], d['misses'], d['builds'], d['evictions'])")
mount_stop
mount_start -o max_entries=3 "${LIMITS[@]}"
after=$("$PACTOWN" cache ls --json | python3 -c 'import json,sys; print(sorted((e["key"], e["last_access"], e["hits"], e["state"]) for e in json.load(sys.stdin)))')
assert_eq "$after" "$before" "cache ls after a restart"
assert_eq "$(python3 -c "import json; d = json.load(open('$MNT/stats')); print(d['hits'], d['misses'], d['builds'], d['evictions'])")" \
    "$stats_before" "stats counters after a restart"

# a lookup the daemon sees updates the access time (kept in memory, written
# before the next eviction run: cache gc)
last_access() { "$PACTOWN" cache ls --json | python3 -c "import json,sys; print({e['key']: e['last_access'] for e in json.load(sys.stdin)}['$1'])"; }
kr=$(ready_keys | cut -d' ' -f1)
t0=$(last_access "$kr")
wait_until 5 sh -c "[ \$(date +%s) -gt $t0 ]" || fail "the clock did not move"
stat "$MNT/by-deps/$kr/bin/python" >/dev/null || fail "lookup of $kr"
"$PACTOWN" cache gc >/dev/null
t1=$(last_access "$kr")
[ "$t1" -gt "$t0" ] || fail "a lookup did not update the access time ($t0 -> $t1)"

# max_age_hours: two hours from now, everything unleased is too old
end_warm
mount_stop
mount_start -o max_entries=0 -o max_age_hours=1 "${LIMITS[@]}"
prewarm 12 >/dev/null
n_ready=$(ready_keys | wc -w)
[ "$n_ready" -ge 2 ] || fail "expected several ready venvs, got $n_ready"
out=$("$PACTOWN" cache gc --dry-run --now $(( $(date +%s) + 7200 )))
grep -q "$n_ready venvs would be evicted" <<<"$out" || fail "gc --dry-run --now +2h: $out"
assert_eq "$(ready_keys | wc -w)" "$n_ready" "ready venvs after a dry run"
"$PACTOWN" cache gc --now $(( $(date +%s) + 7200 )) --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
assert len(d['victims']) == $n_ready and all(v['reason'] == 'max_age_hours' for v in d['victims']), d" \
    || fail "gc with max_age_hours did not evict every venv as too old"
assert_eq "$(ready_keys)" "" "ready venvs after the age limit"
"$PACTOWN" cache gc --json | python3 -c "import json,sys; assert json.load(sys.stdin)['victims'] == []" \
    || fail "gc at the real time evicted something with max_age_hours=1"

# max_bytes is held against the disk the store takes (each file once, the uv
# cache included): room for all but half of what the oldest venv holds alone
a=$(prewarm 13); b=$(prewarm 14); c=$(prewarm 15)
"$PACTOWN" cache gc >/dev/null || fail "cache gc" # the daemon measures the store
disk=$(stat_json disk_bytes)
alone=$("$PACTOWN" cache ls --json | python3 -c "import json,sys; print(next(e['alone_bytes'] for e in json.load(sys.stdin) if e['key'] == '$a'))")
[ "$alone" -gt 0 ] && [ "$disk" -gt "$alone" ] || fail "disk $disk, alone $alone: expected 0 < alone < disk"
mount_stop
mount_start -o max_entries=0 -o max_bytes=$(( disk - alone / 2 )) "${LIMITS[@]}"
"$PACTOWN" cache gc --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
assert [v['key'] for v in d['victims']] == ['$a'] and d['victims'][0]['reason'] == 'max_bytes', d" \
    || fail "gc with max_bytes did not evict exactly the least recently used venv"
assert_eq "$(ready_keys)" "$(sorted_keys "$b" "$c")" "ready venvs after the size limit"

# cache rm, and lookups while it runs: each sees the whole venv (or waits for its rebuild)
set +e; "$PACTOWN" cache rm 0123456789abcdef0123456789abcdef >/dev/null 2>&1; rc=$?; set -e
assert_eq "$rc" 8 "exit code of cache rm on a key that is not built"
out=$("$MNT/by-deps/$b/bin/python" -c 'import ptdemo_extra' 2>&1) || fail "venv b: $out; $("$PACTOWN" cache show "$b")"
files=$(find "$WORK/cache/store/$b" -type f | wc -l)
(
    for _ in $(seq 300); do
        n=$(cat "$MNT/by-deps/$b/lib/python3"*/site-packages/ptdemo_extra/__init__.py 2>&1)
        [ "$n" = "NAME = 'extra'" ] || { echo "lookup saw: $n"; exit 1; }
    done
) >"$WORK/lookups.out" 2>&1 &
looker=$!
for _ in 1 2 3; do
    "$PACTOWN" cache rm "$b" >/dev/null || fail "cache rm $b"
    "$MNT/by-deps/$b/bin/python" -c 'import ptdemo_extra' || fail "rebuild of b after rm"
done
wait "$looker" || fail "a lookup during evictions failed: $(cat "$WORK/lookups.out")"
assert_eq "$(find "$WORK/cache/store/$b" -type f | wc -l)" "$files" "files of the rebuilt venv"
pass
