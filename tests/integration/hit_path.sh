#!/usr/bin/env bash
# The hit path at its floor: a `pactown run --prepare` hit maps no library it
# does not use (no libcurl, libmicrohttpd or TLS library: LD_DEBUG=libs), nor
# does any command's --help; it commits nothing (no fdatasync: it takes no
# lease, having no service to hand one to, and tells the daemon its hit in
# one datagram on uses.sock, which the daemon writes with the lookups'
# access times); the hit and the access time are counted all the same, in
# the mount's stats at once and in `cache ls` (which asks the daemon to
# write them first).
# A run started to stay commits twice (lease and hit; the service's record
# and its lease handed over). `pactown serve` is pactown-serve in the same
# process, and says so when it is not installed. With libcurl unloadable, a
# --prepare hit works as before and a health check fails at once, naming
# the library, with the service stopped.
. "$(dirname "$0")/lib.sh"
mount_start

write_readme "$WORK/a.md" ptdemo-app
"$PACTOWN" run "$WORK/a.md" --service-id cold --prepare >/dev/null 2>"$WORK/cold.err" || fail "cold --prepare: $(cat "$WORK/cold.err")"
key=$(basename "$(readlink "$WORK/sandboxes/cold/.venv")")

heavy='libcurl|libmicrohttpd|libssl|libgnutls|libcrypto|libkrb5|libldap|libnghttp2|libssh'
# libs_of OUT: the libraries LD_DEBUG=libs saw initialised (linked and dlopen'ed)
# (grep -q reads here-strings: in a pipe it may exit first, and pipefail
# would fail the test with the writer's SIGPIPE)
libs_of() { printf '%s\n' "$1" | sed -n 's/.*calling init: //p'; }

# a --prepare hit: none of them
sleep 1.1  # the hit's access time (seconds in cache ls) is then later than the build's
t0=$(date +%s)
hits0=$(stat_json hits)
out=$(LD_DEBUG=libs "$PACTOWN" run "$WORK/a.md" --service-id h1 --prepare 2>&1 >"$WORK/h1.out") || fail "hit: $out"
grep -q "cache hit" <<<"$out" || fail "not a cache hit: $out"
grep -q liblmdb <<<"$(libs_of "$out")" || fail "LD_DEBUG=libs listed no library: $(head -5 <<<"$out")"
loaded=$(libs_of "$out" | grep -E "$heavy" | tr '\n' ' ' || true)
[ -z "$loaded" ] || fail "a --prepare hit loaded $loaded"
assert_eq "$(cat "$WORK/h1.out")" "$WORK/cache/store/$key" "venv printed by the hit"
assert_eq "$(stat_json hits)" $((hits0 + 1)) "hits after a --prepare hit"

# no lease of its own: only the cold run's, stale since it ended (a lease of
# a gone process counts for nothing; the eviction's check deletes it)
lease_rows() { "$PACTOWN" lease ls --json | python3 -c "
import json, sys
print(' '.join('%s:%s' % (l['holder'], 'alive' if l['alive'] else 'stale') for l in json.load(sys.stdin) if l['key'] == '$key'))"; }
# (the stale one may be gone already: the daemon's eviction run deletes stale leases when it counts them)
only_cold_stale() { case "$(lease_rows)" in "" | "cold:stale") return 0 ;; *) return 1 ;; esac; }
only_cold_stale || fail "leases on the key after a --prepare hit: $(lease_rows) (want none but the cold run's, stale)"

# no commit (LeakSanitizer cannot run under ptrace: off for the traced runs of an ASan build)
nolsan="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
if command -v strace >/dev/null; then
    ASAN_OPTIONS=$nolsan strace -qq -e trace=fdatasync,fsync,msync,sync_file_range -o "$WORK/h2.strace" \
        "$PACTOWN" run "$WORK/a.md" --service-id h2 --prepare >/dev/null 2>&1 || fail "hit under strace"
    assert_eq "$(grep -cE '^(fdatasync|fsync|msync|sync_file_range)\(' "$WORK/h2.strace")" 0 \
        "syncs (commits) of a --prepare hit: $(cat "$WORK/h2.strace")"
else
    say "no strace: the commits of a hit are not counted"
    "$PACTOWN" run "$WORK/a.md" --service-id h2 --prepare >/dev/null 2>&1 || fail "hit h2"
fi
only_cold_stale || fail "leases on the key after a second --prepare hit: $(lease_rows)"
assert_eq "$(stat_json hits)" $((hits0 + 2)) "hits after two --prepare hits"
"$PACTOWN" cache ls --json | python3 -c "
import json, sys
e = [e for e in json.load(sys.stdin) if e['key'] == '$key'][0]
assert e['leases'] == 0, e
assert e['hits'] == 2, e
assert e['last_access'] >= $t0, (e, $t0)" || fail "cache ls after the hits: $("$PACTOWN" cache ls --json)"

# no command's --help maps them either; serve's is pactown-serve's
for c in "" run ps stop rm test hash cache lease config; do
    # shellcheck disable=SC2086
    out=$(LD_DEBUG=libs "$PACTOWN" $c --help 2>&1 >/dev/null) || fail "pactown $c --help: $out"
    loaded=$(libs_of "$out" | grep -E "$heavy" | tr '\n' ' ' || true)
    [ -z "$loaded" ] || fail "pactown $c --help loaded $loaded"
done
out=$("$PACTOWN" ps 2>&1 >/dev/null; LD_DEBUG=libs "$PACTOWN" ps 2>&1 >/dev/null) || fail "ps: $out"
[ -z "$(libs_of "$out" | grep -E "$heavy" || true)" ] || fail "pactown ps loaded $(libs_of "$out" | grep -E "$heavy")"
grep -q "^usage: pactown serve" <<<"$("$PACTOWN" serve --help)" || fail "pactown serve --help"
rc=0; "$PACTOWN" serve --no-such-option >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 2 "pactown serve with an unknown option"

# a run started to stay: two commits; the service holds the lease, the run none
port=$(free_port)
if command -v strace >/dev/null; then
    ASAN_OPTIONS=$nolsan strace -qq -e trace=fdatasync,fsync,msync,sync_file_range -o "$WORK/run.strace" \
        "$PACTOWN" run "$WORK/a.md" --service-id svc --port "$port" --detach >/dev/null 2>"$WORK/run.err" \
        || fail "run --detach: $(cat "$WORK/run.err")"
    # with warm = yes, the first run of a key also starts its warm process, whose lease is one more
    want=2
    grep -q "warm: started the warm process" "$WORK/run.err" && want=3
    assert_eq "$(grep -cE '^(fdatasync|fsync|msync|sync_file_range)\(' "$WORK/run.strace")" $want \
        "syncs (commits) of a run on a hit: $(cat "$WORK/run.strace")"
else
    "$PACTOWN" run "$WORK/a.md" --service-id svc --port "$port" --detach >/dev/null 2>"$WORK/run.err" \
        || fail "run --detach: $(cat "$WORK/run.err")"
fi
assert_eq "$(http_status "http://127.0.0.1:$port/")" 200 "the service started on the hit"
assert_eq "$(lease_rows | tr ' ' '\n' | grep -c '^svc:' || true)" 1 "leases of svc (the service's alone)"
assert_eq "$(lease_rows | tr ' ' '\n' | grep '^svc:')" "svc:alive" "the service's lease"
"$PACTOWN" stop svc >/dev/null 2>&1 || fail "stop svc"
end_warm
"$PACTOWN" cache ls --json | python3 -c "
import json, sys
e = [e for e in json.load(sys.stdin) if e['key'] == '$key'][0]
assert e['leases'] == 0, e" || fail "a lease outlived the stopped service: $("$PACTOWN" lease ls)"

# pactown serve execs pactown-serve: the same process (pid), the API answers
serve_start
assert_eq "$(basename "$(readlink "/proc/$SERVE_PID/exe")")" pactown-serve "the program of pactown serve's pid"
assert_eq "$(curl -sS -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://runner/health)" 200 "/health of pactown serve"
kill -TERM "$SERVE_PID"
wait_until 5 sh -c "! kill -0 $SERVE_PID 2>/dev/null" || fail "pactown serve did not stop on SIGTERM"
# a pactown without pactown-serve beside it (nor in ../libexec/pactown) says so
mkdir -p "$WORK/lonely/bin"
cp "$PACTOWN" "$WORK/lonely/bin/pactown"
rc=0; "$WORK/lonely/bin/pactown" serve --help >/dev/null 2>"$WORK/lonely.err" || rc=$?
assert_eq "$rc" 1 "pactown serve without pactown-serve"
grep -q "pactown-serve, and it is not installed" "$WORK/lonely.err" || fail "message: $(cat "$WORK/lonely.err")"

# libcurl that cannot be loaded (an empty file over it, in a mount namespace
# of this test's own): a --prepare hit does not notice; a health check that
# needs HTTP fails at once, naming libcurl, and stops the service
lib=$(ldconfig -p | awk '$1 == "libcurl.so.4" && !lib { lib = $NF } END { print lib }')
if [ -n "$lib" ] && command -v unshare >/dev/null && unshare -m true 2>/dev/null; then
    real=$(readlink -f "$lib")
    nocurl() { unshare -m sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$real" "$@"; }
    venv=$(nocurl "$PACTOWN" run "$WORK/a.md" --service-id h3 --prepare 2>"$WORK/h3.err") \
        || fail "a --prepare hit without libcurl: $(cat "$WORK/h3.err")"
    assert_eq "$venv" "$WORK/cache/store/$key" "venv printed by a hit without libcurl"
    port=$(free_port)
    t0=$(date +%s)
    rc=0; nocurl "$PACTOWN" run "$WORK/a.md" --service-id nc --port "$port" --detach --timeout 60 \
        >/dev/null 2>"$WORK/nc.err" || rc=$?
    assert_eq "$rc" 1 "exit of a run whose health check cannot load libcurl ($(cat "$WORK/nc.err"))"
    grep -q "health check: cannot load libcurl, which HTTP requests need: .*libcurl" "$WORK/nc.err" \
        || fail "the message does not name libcurl: $(cat "$WORK/nc.err")"
    [ $(( $(date +%s) - t0 )) -lt 30 ] || fail "the run waited for its timeout instead of failing at once"
    "$PACTOWN" ps --all --json | python3 -c "
import json, sys
s = [s for s in json.load(sys.stdin) if s['id'] == 'nc']
assert s and not s[0]['running'], s" || fail "the service of the failed health check is still running: $("$PACTOWN" ps --all)"
else
    say "no libcurl.so.4 in ldconfig's cache, or no unshare -m: the run without libcurl is not tried"
fi
pass
