#!/usr/bin/env bash
# pactown serve, the runner API: every route on the Unix socket (mode 0660)
# and on a loopback port with a token (401 without it, X-Runner-Token and
# Bearer both taken), a cache hit whose logs[] say so, /stop that leaves the
# server answering, ports from port_start..port_end given once each and free
# again after /stop, MARKPACT_PORT in the service's environment, services in
# their own session, a restarted server that still lists and stops a running
# service, /run/stream lines as they happen, the sandbox file routes kept
# inside the sandbox, and hostile bodies (413, field-named 400s).
. "$(dirname "$0")/lib.sh"
EXPECT_DAEMON='build of [0-9a-f]+ failed'
mount_start
SOCK=$WORK/run/api.sock
TOKEN=tok-$RANDOM$RANDOM
printf '%s\n' "$TOKEN" >"$WORK/token"
chmod 600 "$WORK/token"
TCP_PORT=$(free_port)
PSTART=$(api_port_start)
export PACTOWN_PORT_START=$PSTART PACTOWN_PORT_END=$(( PSTART + 40 )) PACTOWN_API_MAX_BODY=200000
serve_start --listen "127.0.0.1:$TCP_PORT" --token-file "$WORK/token"
grep -q "listening on unix:$SOCK, http://127.0.0.1:$TCP_PORT (token required)" "$WORK/serve.log" \
    || fail "listening line: $(cat "$WORK/serve.log")"
assert_eq "$(stat -c %a "$SOCK")" 660 "mode of the API socket"

# U METHOD PATH [BODY]: a request on the Unix socket with the token; prints
# the body, then the HTTP status on a line of its own
U() {
    local data=()
    [ $# -ge 3 ] && data=(--data-binary @- -H 'Content-Type: application/json')
    printf '%s' "${3:-}" | curl -sS --max-time 120 --unix-socket "$SOCK" -H "X-Runner-Token: $TOKEN" -X "$1" \
        "${data[@]}" -w '\n%{http_code}\n' "http://runner$2"
}
# J EXPR: evaluate EXPR on the JSON body of the last U output in $R (d is the object)
J() { printf '%s\n' "$R" | sed '$d' | python3 -c "import json,sys; d=json.load(sys.stdin); print(($1))"; }
code() { printf '%s\n' "$R" | tail -n 1; }
body_of() { python3 -c 'import json,sys; print(json.dumps({"project_id": int(sys.argv[2]), "readme_content": open(sys.argv[1]).read(), **json.loads(sys.argv[3] if len(sys.argv) > 3 else "{}")}))' "$@"; }

write_readme "$WORK/a.md" ptdemo-core ptdemo-app
# a service that reports its MARKPACT_PORT and session: it must be its own session leader
cat >"$WORK/env.md" <<'MD'
```text markpact:deps python
ptdemo-core==1.0
```
```python markpact:file path=srv.py
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s %s %s" % (os.environ.get("MARKPACT_PORT"), os.getsid(0) == os.getpid(), os.environ.get("PACTOWN_RUNNER_TOKEN", "-"))).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): print("request", *a, flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["MARKPACT_PORT"])), H).serve_forever()
```
```bash markpact:run
exec python srv.py
```
MD

# /health is open; everything else needs the token
R=$(curl -sS --unix-socket "$SOCK" -w '\n%{http_code}\n' http://runner/runner/health)
assert_eq "$(code)" 200 "status of /health without a token"
assert_eq "$(J 'd["ok"]')" True "/health"
R=$(curl -sS --unix-socket "$SOCK" -w '\n%{http_code}\n' http://runner/runner/status)
assert_eq "$(code)" 401 "status of /status without a token"
R=$(curl -sS -H "X-Runner-Token: wrong$TOKEN" -w '\n%{http_code}\n' "http://127.0.0.1:$TCP_PORT/status")
assert_eq "$(code)" 401 "status of /status with a wrong token over TCP"
R=$(curl -sS -H "Authorization: Bearer $TOKEN" -w '\n%{http_code}\n' "http://127.0.0.1:$TCP_PORT/runner/status")
assert_eq "$(code)" 200 "status of /runner/status with a Bearer token over TCP"

# a first run builds; the second with the same deps is a cache hit that says so
R=$(U POST /runner/run "$(body_of "$WORK/a.md" 7 '{"port": 0, "username": "Ann Smith"}')")
assert_eq "$(code)" 200 "status of the first /run: $R"
assert_eq "$(J 'd["success"], d["service_id"], d["cache_hit"]')" "(True, '7-ann-smith', False)" "first run"
P1=$(J 'd["port"]')
[ "$P1" -ge "$PSTART" ] && [ "$P1" -le $(( PSTART + 40 )) ] || fail "port $P1 is outside port_start..port_end"
assert_eq "$(http_status "http://127.0.0.1:$P1/")" 200 "the first service answers on its port"
J '"\n".join(d["logs"])' | grep '^  | .*ptdemo-app' >/dev/null || fail "no build progress in logs[]: $(J 'd["logs"]')"
R=$(U POST /run "$(body_of "$WORK/a.md" 8 '{"port": 0}')")
assert_eq "$(code)" 200 "status of the second /run"
P2=$(J 'd["port"]')
[ "$P2" != "$P1" ] || fail "the port $P1 was handed out twice"
J '"\n".join(d["logs"])' | grep -E "^⚡ Cache hit! Reusing venv \([0-9a-f]{8}\)$" >/dev/null || fail "no cache-hit line: $(J 'd["logs"]')"
J '"\n".join(d["logs"])' | grep -E "^⚡ Sandbox ready in [0-9]+ms \(cached\)$" >/dev/null || fail "no sandbox-ready line"
J '"\n".join(d["logs"])' | grep -x "Starting: python -m ptdemo_app" >/dev/null || fail "no Starting line"
J '"\n".join(d["logs"])' | grep -E "^✓ Running in [0-9]+ms$" >/dev/null || fail "no Running line"
J 'd["message"]' | grep -E "^Running on port $P2 \([0-9]+ms, cached\)$" >/dev/null || fail "message: $(J 'd["message"]')"
for f in success port pid message logs error_category stderr_output error_context error_report_md suggestions \
         diagnostics service_name sandbox_path user_id service_id; do
    [ "$(J "'$f' in d")" = True ] || fail "RunResponse lacks $f"
done
# MARKPACT_PORT set, own session, the server's token not inherited
R=$(U POST /run "$(body_of "$WORK/env.md" 9 '{"port": 0, "user_id": "u1"}')")
assert_eq "$(code)" 200 "status of /run of env.md: $R"
P3=$(J 'd["port"]')
assert_eq "$(curl -sS "http://127.0.0.1:$P3/")" "$P3 True -" "MARKPACT_PORT, session leader, no token in the environment"

# a user's service: its own uid, its sandbox under <sandbox_root>/u1, not another user's to stop or take
assert_eq "$(stat -c '%a %U' "$WORK/sandboxes/@u1/9")" "700 UNKNOWN" "mode and owner (a uid without a passwd entry)"
R=$(U POST /stop '{"project_id": 9, "user_id": "u2"}')
assert_eq "$(code) $(J 'd["error_category"]')" "403 permission" "/stop of u1's service by u2"
R=$(U POST /run "$(body_of "$WORK/env.md" 9 '{"port": 0, "user_id": "u2"}')")
assert_eq "$(code) $(J 'd["error_category"]')" "403 permission" "/run of u1's service id by u2"

printf '```bash markpact:run\npython -c "b = b\\"x\\" * (300 << 20)"\n```\n' >"$WORK/hog.md"
R=$(U POST /run "$(body_of "$WORK/hog.md" 17 '{"run_once": true, "user_id": "u2", "user_profile": {"max_memory_mb": 64}}')")
assert_eq "$(code) $(J 'd["exit_code"], d["error_category"]')" "200 (137, 'process_crash')" "a job of u2 past user_profile.max_memory_mb"
J '"\n".join(d["logs"])' | grep "the kernel killed 17: out of memory in its cgroup (max_memory_mb=64)" >/dev/null \
    || fail "no OOM line in logs[]: $(J 'd["logs"]')"
R=$(U POST /run "$(body_of "$WORK/a.md" 18 '{"user_id": "u1", "user_profile": {"max_concurrent_services": 1}}')")
assert_eq "$(code) $(J 'd["error_category"]')" "429 permission" "u1's second service at max_concurrent_services=1"
J 'd["message"]' | grep -x "user u1: 1 of 1 concurrent services running (max_concurrent_services)" >/dev/null \
    || fail "the refusal's message: $(J 'd["message"]')"
R=$(U POST /run "$(body_of "$WORK/a.md" 18 '{"user_id": "u1", "user_profile": {"blocked": true, "reason": "unpaid"}}')")
assert_eq "$(code) $(J 'd["message"]')" "403 user u1 is blocked: unpaid" "a blocked user"
printf '```bash markpact:run\ntrue\n```\n' >"$WORK/ok.md"
for i in 1 2 3; do
    R=$(U POST /run "$(body_of "$WORK/ok.md" $((40 + i)) '{"run_once": true, "user_id": "u3", "user_profile": {"max_requests_per_minute": 2}}')")
done
assert_eq "$(code) $(J 'd["message"]')" "429 user u3: 2 of 2 runs asked in the last minute (max_requests_per_minute)" \
    "u3's third run in a minute"
R=$(U POST /run '{"project_id": 1, "readme_content": "x", "user_profile": {"max_memory_mb": 64}}')
assert_eq "$(code) $(J 'd["field"]')" "400 user_id" "limits without a user"
R=$(U POST /run '{"project_id": 1, "readme_content": "x", "user_id": "a/b"}')
assert_eq "$(code) $(J 'd["field"]')" "400 user_id" "a user_id that cannot be a user"

# /cache/stats: pactown's fields and the Fast Start page's
R=$(U GET /runner/cache/stats)
assert_eq "$(J 'sorted(k for k in ("caching_enabled","cache_entries","total_size_mb","hit_rate","oldest_entry_hours","dep_cache","pool_enabled") if k in d)')" \
    "['cache_entries', 'caching_enabled', 'dep_cache', 'hit_rate', 'oldest_entry_hours', 'pool_enabled', 'total_size_mb']" "cache stats fields"
assert_eq "$(J 'd["cache_entries"], d["dep_cache"]["cached_venvs"], len(d["dep_cache"]["entries"])')" "(3, 3, 3)" "cache entries (two sets and the empty one)"
assert_eq "$(J 'd["hit_rate"] > 0 and d["total_size_mb"] > 0')" True "hit rate and size"
assert_eq "$(J 'd["registry"]')" "{'enabled': False, 'pulled': 0, 'pull_failures': 0, 'pushed': 0, 'push_failures': 0}" \
    "the registry's counters, no registry set"

# /status, with the user filter; /status/{id}; /logs/{id}
R=$(U GET /status)
assert_eq "$(J 'sorted(s["service_id"] for s in d["services"])')" "['7-ann-smith', '8', '9']" "/status"
R=$(U GET "/status?user_id=u1")
assert_eq "$(J '[s["service_id"] for s in d["services"]]')" "['9']" "/status?user_id=u1"
R=$(U GET /status/9)
assert_eq "$(J 'd["running"], d["port"], d["user_id"]')" "(True, $P3, 'u1')" "/status/9"
R=$(U GET /status/nope)
assert_eq "$(code) $(J 'd["running"]')" "404 False" "/status of an unknown service"
curl -sS "http://127.0.0.1:$P3/x" >/dev/null
R=$(U GET "/logs/9?tail=1")
assert_eq "$(J 'len(d["lines"]), d["lines"][0].startswith("request")')" "(1, True)" "/logs/9?tail=1"
R=$(U GET "/logs/9?tail=-1")
assert_eq "$(code) $(J 'd["field"]')" "400 tail" "a bad tail"

# /stop stops the service, the server keeps answering, the port is free again
R=$(U POST /stop '{"project_id": 8}')
assert_eq "$(code) $(J 'd["success"], d["port"]')" "200 (True, $P2)" "/stop"
wait_until 5 sh -c "! curl -s -o /dev/null http://127.0.0.1:$P2/" || fail "the stopped service still answers"
R=$(U GET /health)
assert_eq "$(code)" 200 "the server after /stop"
R=$(U POST /run "$(body_of "$WORK/a.md" 10 '{"port": 0}')")
assert_eq "$(J 'd["port"]')" "$P2" "the port of a stopped service is given again"
R=$(U POST /stop '{"project_id": 12345}')
assert_eq "$(code)" 404 "/stop of an unknown service"

# /run/stream: NDJSON lines, the result last
curl -sS -N --unix-socket "$SOCK" -H "X-Runner-Token: $TOKEN" --data-binary "$(body_of "$WORK/a.md" 11)" \
    http://runner/runner/run/stream >"$WORK/stream.out"
python3 - "$WORK/stream.out" <<'PY' || fail "stream: $(cat "$WORK/stream.out")"
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert [o["type"] for o in objs[:-1]] == ["log"] * (len(objs) - 1), objs
assert objs[-1]["type"] == "result" and objs[-1]["result"]["success"], objs[-1]
assert [o["message"] for o in objs[:-1]] == objs[-1]["result"]["logs"], objs
PY

# a job: run_once reports its exit code and output
printf '```bash markpact:run\necho job ran; exit 3\n```\n' >"$WORK/job.md"
R=$(U POST /run "$(body_of "$WORK/job.md" 12 '{"run_once": true}')")
assert_eq "$(J 'd["success"], d["exit_code"], d["message"].startswith("Job exited with code 3")')" "(False, 3, True)" "job"
J 'd["stderr_output"]' | grep -x "job ran" >/dev/null || fail "job output: $(J 'd["stderr_output"]')"

# the README's tests: with run_tests once healthy, and again by GET /test/{id}
write_readme "$WORK/t.md" ptdemo-core ptdemo-app
printf '%s\n' '```http markpact:test http' 'GET /health EXPECT 200' 'GET / EXPECT 404' '```' \
    '```bash markpact:test shell' 'test -f data/hello.txt' '```' >>"$WORK/t.md"
R=$(U POST /run "$(body_of "$WORK/t.md" 14 '{"run_tests": true}')")
assert_eq "$(code) $(J 'd["success"], d["tests"]["passed"], d["tests"]["failed"], d["pid"] > 0')" \
    "200 (False, 2, 1, True)" "run_tests (one test fails on purpose)"
J 'd["message"]' | grep "; the README's tests failed$" >/dev/null || fail "run_tests message: $(J 'd["message"]')"
R=$(U GET /test/14)
assert_eq "$(code) $(J 'd["success"], d["passed"], d["failed"], [t["passed"] for t in d["results"]]')" \
    "200 (False, 2, 1, [True, False, True])" "GET /test/14"
R=$(U GET /test/12345)
assert_eq "$(code)" 404 "GET /test of an unknown service"

# sandbox files: list, read, write, delete; never outside the sandbox
R=$(U GET /sandbox/9/files)
assert_eq "$(J 'sorted(f["path"] for f in d["files"])')" "['.env', 'srv.py']" "/sandbox/9/files"
R=$(U GET "/sandbox/9/file?path=srv.py")
assert_eq "$(J 'd["content"].startswith("import http.server")')" True "GET file"
R=$(U PUT "/sandbox/9/file?path=notes/a.txt" '{"content": "note"}')
assert_eq "$(code) $(cat "$WORK/sandboxes/@u1/9/notes/a.txt")" "200 note" "PUT file"
R=$(U DELETE "/sandbox/9/file?path=notes/a.txt")
[ "$(code)" = 200 ] && [ ! -e "$WORK/sandboxes/@u1/9/notes/a.txt" ] || fail "DELETE file: $R"
ln -s /etc "$WORK/sandboxes/@u1/9/etc"  # user u1's: <sandbox_root>/u1/9
for p in ../../etc/passwd /etc/passwd etc/passwd .venv/bin/python .pactown/service.log; do
    R=$(U GET "/sandbox/9/file?path=$p")
    assert_eq "$(code)" 400 "GET $p"
    R=$(U PUT "/sandbox/9/file?path=$p" '{"content": "x"}')
    assert_eq "$(code)" 400 "PUT $p"
done
[ ! -e /etc/passwd.pactown-tmp ] && ! grep -q '^x$' /etc/passwd || fail "a write left the sandbox"
R=$(U GET "/sandbox/..%2F..%2Fetc/files")
assert_eq "$(code)" 404 "files of a hostile id"

# hostile bodies: too large, not JSON, wrong types, bad ids, bad env
big=$(python3 -c 'print("{\"project_id\": 1, \"readme_content\": \"" + "x" * 300000 + "\"}")')
# (a client that says Expect: 100-continue reads the refusal before it sends the body)
R=$(printf '%s' "$big" | curl -sS --unix-socket "$SOCK" -H "X-Runner-Token: $TOKEN" -H 'Expect: 100-continue' \
    --data-binary @- -w '\n%{http_code}\n' http://runner/run)
assert_eq "$(code)" 413 "a body over api_max_body"
R=$(printf '%s' "$big" | curl -sS --unix-socket "$SOCK" -H "X-Runner-Token: $TOKEN" -H 'Transfer-Encoding: chunked' \
    -H 'Expect: 100-continue' --data-binary @- -w '\n%{http_code}\n' http://runner/run)
assert_eq "$(code)" 413 "a chunked body over api_max_body"
R=$(U POST /run '{"project_id": 1, "readme_content": "x"')
assert_eq "$(code)" 400 "not JSON"
R=$(U POST /run '{"project_id": "1", "readme_content": "x"}')
assert_eq "$(code) $(J 'd["field"]')" "400 project_id" "project_id as a string"
R=$(U POST /run '{"project_id": 1}')
assert_eq "$(code) $(J 'd["field"]')" "400 readme_content" "no readme_content"
R=$(U POST /run '{"project_id": 1, "readme_content": "x", "port": 70000}')
assert_eq "$(code) $(J 'd["field"]')" "400 port" "port out of range"
R=$(U POST /run '{"project_id": 1, "readme_content": "x", "warm": "sometimes"}')
assert_eq "$(code) $(J 'd["field"]')" "400 warm" "warm neither a bool nor auto"
for id in '../x' 'a/b' 'a\\b' '..'; do
    R=$(U POST /run "{\"project_id\": 1, \"service_id\": \"$id\", \"readme_content\": \"x\"}")
    assert_eq "$(code) $(J 'd["field"]')" "400 service_id" "service_id $id"
done
R=$(U POST /run '{"project_id": 1, "readme_content": "x", "env": {"A;rm -rf /": "1"}}')
assert_eq "$(code) $(J 'd["field"]')" "400 env" "a bad env name"
R=$(U POST /run '{"project_id": 1, "readme_content": "x", "env": {"A": 1}}')
assert_eq "$(code) $(J 'd["field"]')" "400 env" "a non-string env value"

# "warm": true: the first run is cold and starts the venv's warm process; once it listens, the next is
# forked from it, and the answer says so
R=$(U POST /run "$(body_of "$WORK/a.md" 31 '{"warm": true}')")
assert_eq "$(code) $(J 'd["success"]')" "200 True" "a warm-enabled run: $(J 'd["message"]')"
wkey=$(J 'd["key"]')
R=$(U POST /stop '{"project_id": 31}')
wait_until 30 sh -c "ls '$WORK'/cache/warm/$wkey-*/preloaded >/dev/null 2>&1" || fail "the API's run started no warm process"
R=$(U POST /run "$(body_of "$WORK/a.md" 31 '{"warm": true}')")
assert_eq "$(code) $(J 'd["success"], d["warm"], d["cache_hit"]')" "200 (True, True, True)" "a warm run: $(J 'd["message"]')"
assert_eq "$(http_status "http://127.0.0.1:$(J 'd["port"]')/")" 200 "HTTP status of the warm service"
R=$(U POST /run "$(body_of "$WORK/a.md" 32 '{"warm": false}')")
assert_eq "$(code) $(J 'd["success"], d["warm"]')" "200 (True, False)" "a run with warm false"
R=$(U POST /stop '{"project_id": 31}')
R=$(U POST /stop '{"project_id": 32}')
R=$(U POST /run '[]')
assert_eq "$(code)" 400 "an array body"
R=$(U POST /run "$(python3 -c 'import json; print(json.dumps({"project_id": 13, "readme_content": "```text markpact:deps python\nfoo ===\n```\n```bash markpact:run\ntrue\n```\n"}))')")
assert_eq "$(code) $(J 'd["error_category"]')" "400 validation" "a README that does not parse"
J 'd["message"]' | grep "^readme_content:2: " >/dev/null || fail "the README error lacks FILE:LINE: $(J 'd["message"]')"
printf '```text markpact:deps python\nptdemo-nosuch\n```\n```bash markpact:run\ntrue\n```\n' >"$WORK/nosuch.md"
R=$(U POST /run "$(body_of "$WORK/nosuch.md" 16)")
assert_eq "$(code) $(J 'd["error_category"]')" "422 dependency" "a set that cannot be installed"
J 'd["stderr_output"]' | grep "ptdemo-nosuch" >/dev/null || fail "the build's cause is not in stderr_output: $(J 'd["stderr_output"]')"
R=$(U GET /nope)
assert_eq "$(code)" 404 "an unknown route"
R=$(U GET /run)
assert_eq "$(code)" 405 "GET /run"

# what the hostile review found, held: an id too long to be valid locks no
# shorter one; %00 cuts no id or path short; a line break in an env value;
# an env string over MAX_ARG_STRLEN; a system port; a job's own exit code is
# no exit code of pactown's; stderr_output is this run's; a look at the cache
# registers nothing; a job in flight can be stopped
long=$(printf 'a%.0s' $(seq 64))
R=$(U PUT "/sandbox/${long}b/file?path=x" '{"content": "x"}')
assert_eq "$(code)" 404 "PUT into a 65-byte id"
R=$(U POST /stop "{\"service_id\": \"$long\"}")
assert_eq "$(code)" 404 "/stop of the 64-byte id after that (not 409: nothing holds it)"
R=$(U DELETE "/services/9%00x")
assert_eq "$(code)" 404 "DELETE /services/9%00x"
[ -d "$WORK/sandboxes/@u1/9" ] || fail "DELETE of 9%00x removed the sandbox of 9"
R=$(U GET "/sandbox/9/file?path=srv.py%00../../etc/passwd")
assert_eq "$(code)" 400 "a path with %00"
R=$(U POST /run '{"project_id": 1, "readme_content": "x", "env": {"A": "x\nEVIL=1"}}')
assert_eq "$(code) $(J 'd["field"]')" "400 env" "a line break in an env value"
R=$(U POST /run "$(python3 -c 'import json; print(json.dumps({"project_id": 1, "readme_content": "x", "env": {"A": "x" * 140000}}))')")
assert_eq "$(code) $(J 'd["field"]')" "400 env" "an env value over 128 KiB"
R=$(U POST /run '{"project_id": 1, "readme_content": "x", "port": 80}')
assert_eq "$(code) $(J 'd["field"]')" "400 port" "port 80"
printf '```bash markpact:run\necho second; exit 4\n```\n' >"$WORK/job4.md"
R=$(U POST /run "$(body_of "$WORK/job4.md" 12 '{"run_once": true}')")
assert_eq "$(code) $(J 'd["success"], d["exit_code"], d["error_category"], d["stderr_output"]')" \
    "200 (False, 4, 'process_crash', 'second\\n')" "a job that exits 4, after one that printed 'job ran'"
specs() { mdb_stat -s spec "$WORK/cache/index" | awk '/Entries:/ {print $2}'; }
n=$(specs)
R=$(U POST /cache/venv '{"deps": ["ptdemo-extra==1.0", "ptdemo-core==1.0"], "create": false}')
assert_eq "$(code) $(J 'd["cached"]') $(specs)" "200 False $n" "a look at an unbuilt set registers nothing"
printf '```bash markpact:run\nsleep 600\n```\n' >"$WORK/sleep.md"
curl -sS --max-time 60 --unix-socket "$SOCK" -H "X-Runner-Token: $TOKEN" -o "$WORK/sleep.json" \
    --data-binary "$(body_of "$WORK/sleep.md" 15 '{"run_once": true}')" http://runner/run &
sleeper=$!
wait_until 10 sh -c "curl -s --unix-socket '$SOCK' -H 'X-Runner-Token: $TOKEN' http://runner/status/15 | grep -q '\"running\":true'" \
    || fail "the job did not start"
R=$(U POST /stop '{"project_id": 15}')
assert_eq "$(code) $(J 'd["success"]')" "200 True" "/stop of a job in flight"
wait "$sleeper" || fail "the stopped job's request failed"
grep -q '"message":"Job killed by signal 15' "$WORK/sleep.json" || fail "the stopped job: $(cat "$WORK/sleep.json")"
# the token reaches neither a 401 before the body is read nor a service
R=$(python3 -c 'print("{" + " " * 300000 + "}")' | curl -sS --unix-socket "$SOCK" -H 'Expect: 100-continue' \
    --data-binary @- -w '\n%{http_code}\n' http://runner/run)
assert_eq "$(code)" 401 "a large body without the token: refused before it is read"

# the server restarts: the running services are still listed and stopped
kill -TERM "$SERVE_PID"
wait_until 5 sh -c "! kill -0 $SERVE_PID 2>/dev/null" || fail "pactown serve did not stop on SIGTERM"
assert_eq "$(http_status "http://127.0.0.1:$P3/")" 200 "a service after the server stopped"
serve_start --listen "127.0.0.1:$TCP_PORT" --token-file "$WORK/token"
R=$(U GET /status)
assert_eq "$(J 'sorted(s["service_id"] for s in d["services"])')" "['10', '11', '14', '7-ann-smith', '9']" "/status after a restart"
R=$(U POST /stop '{"project_id": 9}')
assert_eq "$(code) $(J 'd["success"]')" "200 True" "/stop after a restart"
wait_until 5 sh -c "! curl -s -o /dev/null http://127.0.0.1:$P3/" || fail "the service still answers after /stop"
R=$(U DELETE /services/9)
[ "$(code)" = 200 ] && [ ! -e "$WORK/sandboxes/@u1/9" ] || fail "DELETE /services/9: $R"
R=$(U DELETE /services/10)
assert_eq "$(code)" 409 "DELETE of a running service"

# a token from the environment is gone from the server's /proc/PID/environ
kill -TERM "$SERVE_PID"
wait_until 5 sh -c "! kill -0 $SERVE_PID 2>/dev/null" || fail "pactown serve did not stop"
PACTOWN_RUNNER_TOKEN=$TOKEN serve_start --listen "127.0.0.1:$TCP_PORT"
tr '\0' '\n' <"/proc/$SERVE_PID/environ" | grep -q "$TOKEN" && fail "the token is in the server's /proc/PID/environ"
R=$(U GET /status)
assert_eq "$(code)" 200 "the token from PACTOWN_RUNNER_TOKEN"

# a non-loopback address without a token is refused
rc=0; PACTOWN_RUNNER_TOKEN= "$PACTOWN" serve --socket '' --listen "0.0.0.0:$(free_port)" >/dev/null 2>"$WORK/nl.err" || rc=$?
assert_eq "$rc" 2 "exit code of --listen 0.0.0.0 without a token"
grep -q "not a loopback address: configure a token first" "$WORK/nl.err" || fail "$(cat "$WORK/nl.err")"
chmod 644 "$WORK/token"
rc=0; "$PACTOWN" serve --socket "$WORK/x.sock" --token-file "$WORK/token" >/dev/null 2>"$WORK/tf.err" || rc=$?
assert_eq "$rc" 1 "exit code with a token file others may read"
grep -q "other users may read it" "$WORK/tf.err" || fail "$(cat "$WORK/tf.err")"
! grep -q "$TOKEN" "$WORK/serve.log" "$WORK/tf.err" || fail "the token reached a log"
pass
