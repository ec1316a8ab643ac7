#!/usr/bin/env bash
# A registry that asks who you are (issue 13): docker-registry with htpasswd
# (HTTP Basic), then with token auth (the distribution project's token
# flow: a 401 with a Bearer challenge, a token from the realm for the
# credentials, the request again with it); credentials from a Docker
# config.json-style file (registry_auth). Wrong credentials, none, a file
# others can read, and a registry that accepts connections but never
# answers: each ends in a local build and a log line that names the cause.
. "$(dirname "$0")/lib.sh"
[ -n "$UV_BIN" ] || skip "uv is not installed"
command -v htpasswd >/dev/null || skip "htpasswd is not installed (tools/setup installs apache2-utils)"
command -v unshare >/dev/null && command -v nsenter >/dev/null || skip "no unshare/nsenter"
EXTRA_DAEMON_LOGS=$B_LOG
EXPECT_DAEMON='pushing [0-9a-f]{32} to the registry failed'
BLOG=$WORK/hostb/cache/logs

htpasswd -Bbn pt-user 's3cret pass' > "$WORK/htpasswd"
REG_PORT=$(free_port)
auth_file() { # FILE USER PASSWORD [MODE]
    python3 - "$@" <<'PY'
import base64, json, os, sys
path, user, pw = sys.argv[1:4]
mode = int(sys.argv[4], 8) if len(sys.argv) > 4 else 0o600
with open(path, "w") as f:
    json.dump({"auths": {"127.0.0.1:%s" % os.environ["REG_PORT"]: {"auth": base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}}}, f)
os.chmod(path, mode)
PY
}
export REG_PORT
auth_file "$WORK/good.json" pt-user 's3cret pass'
auth_file "$WORK/bad.json" pt-user 'wrong'
auth_file "$WORK/open.json" pt-user 's3cret pass' 644
printf '{"auths": {}}' > "$WORK/none.json"; chmod 600 "$WORK/none.json"
pushed() { python3 -c "import json; print(json.load(open('$MNT/stats'))['registry']['pushed'])"; }
wait_pushed() { wait_until 30 sh -c "[ \"\$(python3 -c \"import json; print(json.load(open('$MNT/stats'))['registry']['$2'])\")\" = $1 ]"; }
a_prewarm() { "$PACTOWN" cache prewarm "$@" 2>>"$WORK/prewarm.log" | cut -d' ' -f1; }
b_prewarm() { hostb "$PACTOWN" cache prewarm "$@" 2>>"$WORK/prewarm.log" | cut -d' ' -f1; }

# b_case NAME CAUSE SET...: host B's first lookup of SET builds it here, its log naming CAUSE
b_case() {
    local name=$1 cause=$2; shift 2
    local k
    k=$(b_prewarm "$@")
    [ -n "$k" ] || fail "$name: host B's prewarm: $(tail -3 "$WORK/prewarm.log")"
    grep -q "pull FAILED: .*$cause" "$BLOG/$k.log" \
        || fail "$name: host B's log does not name the cause ($cause): $(grep -i -e registry -e pull "$BLOG/$k.log")"
    grep -q "ready (built here: the pull failed)" "$BLOG/$k.log" || fail "$name: not built here: $(tail -3 "$BLOG/$k.log")"
    say "$name: built here, and said why"
}
# b_pulls SET...: host B's first lookup of SET pulls it
b_pulls() {
    local k
    k=$(b_prewarm "$@")
    grep -q "ready (pulled)" "$BLOG/$k.log" || fail "host B did not pull $*: $(grep -i -e registry -e pull "$BLOG/$k.log")"
}

# ---- htpasswd (Basic)
registry_start htpasswd "$WORK/htpasswd"
mount_start -o registry="$REG_URL" -o registry_auth="$WORK/good.json"
for set in "ptdemo-core==1.0" "ptdemo-core==2.0" ptdemo-extra ptdemo-tools; do a_prewarm $set >/dev/null; done
wait_pushed 4 pushed || fail "host A did not push 4 venvs with Basic credentials: $(grep -h registry "$WORK"/cache/logs/*.log)"
out=$("$PACTOWN" cache ls --remote --set registry="$REG_URL" --set registry_auth="$WORK/good.json") || fail "ls --remote: $out"
assert_eq "$(grep -c '^[0-9a-f]\{32\} ' <<<"$out")" 4 "venvs that ls --remote lists"
out=$("$PACTOWN" cache ls --remote --set registry="$REG_URL" 2>&1) && fail "ls --remote without credentials succeeded: $out"
grep -q "401 Unauthorized, and registry_auth has no credentials for 127.0.0.1:$REG_PORT" <<<"$out" \
    || fail "ls --remote without credentials: $out"

hostb_start -o registry="$REG_URL" -o registry_auth="$WORK/bad.json" -o registry_push=no
b_case "wrong password" "the credentials of registry_auth were refused" "ptdemo-core==1.0"
hostb_stop
hostb_start -o registry="$REG_URL" -o registry_auth="$WORK/none.json" -o registry_push=no
b_case "no credentials" "registry_auth has no credentials for 127.0.0.1:$REG_PORT" "ptdemo-core==2.0"
hostb_stop
hostb_start -o registry="$REG_URL" -o registry_auth="$WORK/open.json" -o registry_push=no
b_case "auth file others can read" "readable by group or others (mode 0644)" ptdemo-extra
hostb_stop
hostb_start -o registry="$REG_URL" -o registry_auth="$WORK/good.json" -o registry_push=no
b_pulls ptdemo-tools
hostb_stop

# ---- a registry that accepts connections and never answers
SLOW_PORT=$(free_port)
python3 -c "import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $SLOW_PORT)); s.listen(16); print('listening', flush=True); time.sleep(600)" > "$WORK/slow.log" &
EXTRA_PIDS="$EXTRA_PIDS $!"
wait_until 10 grep -q listening "$WORK/slow.log" || fail "the silent listener did not start"
hostb_start -o registry="http://127.0.0.1:$SLOW_PORT/pt/venvs" -o registry_timeout=1 -o registry_push=no
t0=$(date +%s%N)
b_case "registry silent" "Operation timed out\|Timeout was reached\|timed out" ptdemo-trace
[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 15000 ] || fail "a silent registry held the build for more than 15 s"
hostb_stop

# ---- token auth (Bearer): a token service signs tokens the registry trusts
registry_stop
mount_stop
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/token.key" -out "$WORK/token.crt" -days 2 \
    -subj "/CN=pactown-test" >/dev/null 2>&1 || fail "openssl could not make the token service's certificate"
TOKEN_PORT=$(free_port)
python3 "$SRC/tests/fixtures/token_server.py" "$TOKEN_PORT" "$WORK/token.key" "$WORK/token.crt" pactown-test \
    pt-user 's3cret pass' > "$WORK/token.log" 2>&1 &
EXTRA_PIDS="$EXTRA_PIDS $!"
wait_until 10 grep -q listening "$WORK/token.log" || fail "the token service did not start: $(cat "$WORK/token.log")"
registry_start token "http://127.0.0.1:$TOKEN_PORT/token" "$WORK/token.crt"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REG_PORT/v2/")
assert_eq "$code" 401 "the token registry without a token"
mount_start -o registry="$REG_URL" -o registry_auth="$WORK/good.json"
a_prewarm ptdemo-trace "ptdemo-core==1.0" >/dev/null
wait_pushed 5 pushed || fail "host A did not push with a token: $(grep -h -i registry "$WORK"/cache/logs/*.log | tail -5)"
hostb_start -o registry="$REG_URL" -o registry_auth="$WORK/good.json" -o registry_push=no
b_pulls ptdemo-trace "ptdemo-core==1.0"
hostb_stop
a_prewarm ptdemo-trace "ptdemo-core==2.0" >/dev/null
wait_pushed 6 pushed || fail "host A did not push its second venv with a token"
hostb_start -o registry="$REG_URL" -o registry_auth="$WORK/bad.json" -o registry_push=no
b_case "token refused" "the token service http://127.0.0.1:$TOKEN_PORT/token answered 401 (credentials refused)" \
    ptdemo-trace "ptdemo-core==2.0"
hostb_stop
grep -rq 's3cret' "$WORK/cache/logs" "$WORK/hostb/cache/logs" "$DAEMON_LOG" "$B_LOG" \
    && fail "a password reached a log"
pass
