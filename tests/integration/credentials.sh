#!/usr/bin/env bash
# An index URL with credentials (https://user:token@host/simple): a real
# index on loopback that answers 401 without them. The build gets them (it
# succeeds), and the token appears nowhere else: not in `pactown hash`, the
# key's canonical text, the index, `pactown config`, the build log, the
# daemon's log, any file of the cache, or any process's argument vector. It
# reaches the installer through its environment only (the positive control),
# with uv and with pip.
. "$(dirname "$0")/lib.sh"
TOKEN=tok3n-$RANDOM$RANDOM-s3cr3t
AUTH_INDEX_PASSWORD=$TOKEN python3 "$SRC/tests/fixtures/auth_index.py" "$WHEELHOUSE" ptuser "$WORK/index.port" &
INDEX_PID=$!
EXTRA_PIDS="$EXTRA_PIDS $INDEX_PID"  # killed by the harness's cleanup, which keeps the test's exit status
wait_until 20 test -s "$WORK/index.port" || fail "the test index did not start"
port=$(cat "$WORK/index.port")
export PACTOWN_INDEX_URL="http://ptuser:$TOKEN@127.0.0.1:$port/simple/"
export PACTOWN_NO_INDEX=no PACTOWN_FIND_LINKS= PACTOWN_OFFLINE=no
[ "$(http_status "http://127.0.0.1:$port/simple/")" = 401 ] || fail "the test index does not demand credentials"

no_token() { # WHAT TEXT-OR-FILE...
    local what=$1; shift
    if grep -rqaF -- "$TOKEN" "$@" 2>/dev/null; then fail "the token appears in $what"; fi
}

"$PACTOWN" hash ptdemo-app >"$WORK/hash.out" || fail "pactown hash"
grep -qx "installer index-url=http://127.0.0.1:$port/simple/ find-links=none no-index=no" "$WORK/hash.out" \
    || fail "the key's installer line: $(sed -n 3p "$WORK/hash.out")"
no_token "pactown hash" "$WORK/hash.out"
"$PACTOWN" config >"$WORK/config.out"
no_token "pactown config" "$WORK/config.out"
grep -q "index_url = http://\*\*\*@127.0.0.1:$port/simple/" "$WORK/config.out" || fail "config: $(grep index_url "$WORK/config.out")"

block_builds_on ptdemo-app
mount_start -o uv="$BLOCKING_UV"
key=$(register ptdemo-app)
stat -L "$MNT/by-deps/$key" >/dev/null 2>"$WORK/stat.err" &
waiter=$!
wait_until 30 test -e "$PT_BLOCK_MARK" || fail "the build did not start"
# while the build runs: no argument vector holds the token, the installer's environment does
for p in /proc/[0-9]*; do
    if grep -qaF -- "$TOKEN" "$p/cmdline" 2>/dev/null; then
        fail "the token appears in the argument vector of $( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | cut -c1-80)"
    fi
done
installer=$(pgrep -f "[b]locking-uv pip install" | sed -n 1p)
[ -n "$installer" ] || fail "no installer process"
tr '\0' '\n' <"/proc/$installer/environ" | grep -qxF "UV_INDEX_URL=$PACTOWN_INDEX_URL" \
    || fail "the installer's environment does not carry the index URL with its credentials"
[ "$(stat -c %a "/proc/$installer/environ")" = 400 ] || fail "the installer's environment is readable by others"
release_builds
wait "$waiter" || fail "the build with credentials failed: $(cat "$WORK/stat.err"; tail -20 "$MNT/logs/$key.log")"
"$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app' || fail "the venv"
[ "$(cat "$WORK/index.port.hits" 2>/dev/null || echo 0)" -gt 0 ] || fail "the index saw no authorized request"
no_token "the build log" "$MNT/logs/$key.log"
no_token "the daemon's log" "$DAEMON_LOG"
no_token "the cache directory (index, logs, store, tmp)" "$WORK/cache"
grep -q "127.0.0.1:$port" "$WORK/cache/index/data.mdb" || fail "the index holds no spec for the key (control)"

# pip: the same through PIP_INDEX_URL
mount_stop
"$PACTOWN" cache ls >/dev/null
rm -f "$WORK/index.port.hits"
mount_start -o installer=pip
"$PACTOWN" cache rm "$key" >/dev/null || fail "cache rm before the pip build"
"$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app' || fail "the pip build with credentials: $(tail -20 "$MNT/logs/$key.log")"
grep -q "install (pip)" "$MNT/logs/$key.log" || fail "the second build did not use pip"
[ "$(cat "$WORK/index.port.hits" 2>/dev/null || echo 0)" -gt 0 ] || fail "pip made no authorized request"
no_token "the pip build log" "$MNT/logs/$key.log"
no_token "the daemon's log" "$DAEMON_LOG"
no_token "the cache directory" "$WORK/cache"
pass
