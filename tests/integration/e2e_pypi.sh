#!/usr/bin/env bash
# End to end with the real package index: the fastapi-todo and flask-blog
# READMEs from ../shared/realworld build from PyPI, answer HTTP, and a second
# service whose README lists the same deps in another order and case is a
# cache hit. Skips (with a SKIP line) when the index cannot be reached.
. "$(dirname "$0")/lib.sh"
unset PACTOWN_FIND_LINKS PACTOWN_NO_INDEX PACTOWN_OFFLINE
export PACTOWN_UV_CACHE_DIR=$BUILD/uv-cache-e2e  # kept between runs: later runs download less

probe=$WORK/probe
timeout 30 python3 -m pip download --no-deps --disable-pip-version-check -q -d "$probe" six >/dev/null 2>&1 \
    || skip "the package index cannot be reached (pip download six failed): no network"
todo=$SHARED/realworld/markpact-fastapi-todo.md
blog=$SHARED/realworld/markpact-flask-blog.md
[ -f "$todo" ] && [ -f "$blog" ] || skip "the realworld READMEs are not at $SHARED/realworld"
mount_start

p1=$(free_port)
out=$("$PACTOWN" run "$todo" --service-id todo --port "$p1" --detach --timeout 120 2>&1) || fail "run fastapi-todo: $out"
grep -q "cache miss" <<<"$out" || fail "fastapi-todo: not a cold start: $out"
assert_eq "$(http_status "http://127.0.0.1:$p1/todos")" 200 "GET /todos of fastapi-todo"
python3 - "$todo" "$WORK/todo2.md" <<'PY'
import sys
t = open(sys.argv[1]).read()
assert "fastapi\nuvicorn\nsqlalchemy\npydantic\n" in t
open(sys.argv[2], "w").write(t.replace("fastapi\nuvicorn\nsqlalchemy\npydantic\n", "Pydantic\nSQLAlchemy  # orm\nuvicorn\nFastAPI\n"))
PY
p2=$(free_port)
out=$("$PACTOWN" run "$WORK/todo2.md" --service-id todo2 --port "$p2" --detach --timeout 120 2>&1) || fail "run todo2: $out"
grep -q "cache hit" <<<"$out" || fail "the reordered README was not a cache hit: $out"
assert_eq "$(http_status "http://127.0.0.1:$p2/todos")" 200 "GET /todos of the second service"
"$PACTOWN" stop todo >/dev/null && "$PACTOWN" stop todo2 >/dev/null || fail "stop"

# flask-blog listens on port 5000 whatever PORT says: pactown finds and reports it
if python3 -c 'import socket; s=socket.socket(); s.bind(("0.0.0.0", 5000))' 2>/dev/null; then
    out=$("$PACTOWN" run "$blog" --service-id blog --port "$(free_port)" --detach --timeout 120 2>&1) || fail "run flask-blog: $out"
    grep -q "listens on port 5000" <<<"$out" || fail "flask-blog: the port note is missing: $out"
    assert_eq "$(http_status "http://127.0.0.1:5000/")" 200 "GET / of flask-blog"
    "$PACTOWN" stop blog >/dev/null || fail "stop blog"
else
    say "SKIP part: port 5000 is in use, flask-blog (which always listens on 5000) not run"
fi

# the runner API on a loopback port with a token: POST /runner/run of the
# fastapi-todo README serves the app; a second run of the same deps is a
# cache hit whose logs[] say so; /stop stops it and the server answers on
TOKEN=e2e-$RANDOM$RANDOM
api_port=$(free_port)
PACTOWN_RUNNER_TOKEN=$TOKEN serve_start --socket '' --listen "127.0.0.1:$api_port"
api_run() {
    python3 - "$1" "$2" "$api_port" "$TOKEN" <<'PY'
import json, sys, urllib.request
body = json.dumps({"project_id": int(sys.argv[2]), "readme_content": open(sys.argv[1]).read(), "port": 0,
                   "health_timeout": 120}).encode()
rq = urllib.request.Request("http://127.0.0.1:%s/runner/run" % sys.argv[3], data=body,
                            headers={"X-Runner-Token": sys.argv[4], "Content-Type": "application/json"})
d = json.load(urllib.request.urlopen(rq, timeout=600))
print(d["success"], d["port"], d["cache_hit"], json.dumps(d["logs"]), d["message"])
PY
}
read -r ok port1 hit1 logs1 <<<"$(api_run "$todo" 501)" || fail "POST /runner/run of fastapi-todo"
assert_eq "$ok" True "success of the API run of fastapi-todo ($logs1)"
assert_eq "$(http_status "http://127.0.0.1:$port1/todos")" 200 "GET /todos of the API's fastapi-todo"
read -r ok port2 hit2 logs2 <<<"$(api_run "$WORK/todo2.md" 502)" || fail "second API run"
assert_eq "$ok $hit2" "True True" "the second API run is a cache hit"
grep -q "Cache hit! Reusing venv" <<<"$logs2" || fail "the cache hit is not in logs[]: $logs2"
[ "$port1" != "$port2" ] || fail "one port for two services"
for id in 501 502; do
    curl -sf -H "X-Runner-Token: $TOKEN" -d "{\"project_id\": $id}" "http://127.0.0.1:$api_port/runner/stop" >/dev/null \
        || fail "/runner/stop $id"
done
assert_eq "$(http_status "http://127.0.0.1:$api_port/runner/health")" 200 "the server after /stop"

# the READMEs' own tests, as a new user runs them: the CLIs as jobs (--once),
# the services with --test; every test block passes
R=$SHARED/realworld
for f in markpact-markdown-converter pactown-saas-cli; do
    out=$("$PACTOWN" run --once --test "$R/$f.md" --service-id "$f" --timeout 120 2>"$WORK/$f.err") \
        || fail "run --once --test $f: $out $(tail -n 20 "$WORK/$f.err")"
done
echo "$out" | tail -n 1 | grep -qx "4 passed, 0 failed" || fail "saas-cli tests: $out"
grep -q "job markpact-markdown-converter exited with 0" "$WORK/markpact-markdown-converter.err" \
    || fail "markdown-converter: $(cat "$WORK/markpact-markdown-converter.err")"
for t in markpact-static-frontend:1 pactown-saas-gateway:3 pactown-saas-web:2; do
    f=${t%:*} n=${t#*:}
    out=$("$PACTOWN" run --test "$R/$f.md" --service-id "$f" --port "$(free_port)" --timeout 120 2>"$WORK/$f.err") \
        || fail "run --test $f: $out $(tail -n 20 "$WORK/$f.err")"
    echo "$out" | tail -n 1 | grep -qx "$n passed, 0 failed" || fail "$f tests: $out"
done
pass
