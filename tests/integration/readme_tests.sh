#!/usr/bin/env bash
# Jobs, health that cannot be fooled, and the README's own tests:
#   run --once runs a job to its end (output streamed, stdin passed on, its
#   exit code; 128+N for signal N); a job run as a service is named a job;
#   a port held by another program is refused with its holder, and a port
#   answered by another process group is never healthy; the probe is
#   pactown's (/health, then /), 5xx retried and reported; run --test and
#   pactown test ID run markpact:test http and shell lines; --json.
. "$(dirname "$0")/lib.sh"
mount_start

# a service with routes, written by the README itself (app.py)
app_readme() {  # FILE TESTBLOCK...
    local file=$1; shift
    cat >"$file" <<'MD'
# items service
```text markpact:deps python
ptdemo-core
```
```python markpact:file path=app.py
import http.server, json, os, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def send(self, code, body=b"", extra=()):
        self.send_response(code)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/health":
            self.send(int(os.environ.get("HEALTH", "200")))
        elif self.path == "/old":
            self.send(302, extra=[("Location", "/")])
        elif self.path == "/":
            self.send(int(os.environ.get("ROOT", "200")), b"home")
        else:
            self.send(404)
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        data = json.loads(self.rfile.read(n) or b"null")
        ok = self.headers.get("Content-Type") == "application/json" and isinstance(data, dict) and "title" in data
        self.send(201 if ok and self.path == "/items" else 422)
    def log_message(self, *a):
        pass
socketserver.TCPServer.allow_reuse_address = True
with socketserver.TCPServer((os.environ["HOST"], int(os.environ["PORT"])), H) as s:
    s.serve_forever()
```
```bash markpact:run
python app.py
```
MD
    printf '%s\n' "$@" >>"$file"
}

# ---- jobs ----
cat >"$WORK/job.md" <<'MD'
```text markpact:deps python
ptdemo-core
```
```python markpact:file path=cli.py
import sys, ptdemo_core
print("job core=%s args=%s" % (ptdemo_core.VERSION, " ".join(sys.argv[1:])))
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
```
```bash markpact:run
python cli.py ${JOB_EXIT:-0}
```
```bash markpact:test shell
test -f cli.py
python -c "import ptdemo_core"
```
MD
out=$("$PACTOWN" run --once "$WORK/job.md" --service-id job 2>"$WORK/job.err") || fail "run --once: $(cat "$WORK/job.err")"
assert_eq "$out" "job core=2.0 args=0" "the job's output, streamed to stdout"
grep -q "pactown: job job exited with 0 after .* ms" "$WORK/job.err" || fail "no timing line: $(cat "$WORK/job.err")"
key=$(basename "$(readlink "$WORK/sandboxes/job/.venv")")
"$PACTOWN" lease ls --json 2>/dev/null | grep -q "\"$key\"" && fail "the job's lease outlived it"
"$PACTOWN" ps --all --json | python3 -c "
import json, sys
s = {x['id']: x for x in json.load(sys.stdin)}
assert not s['job']['running'], s" || fail "ps shows the job running"
rc=0; "$PACTOWN" run --once "$WORK/job.md" --service-id job --env JOB_EXIT=3 >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 3 "exit code of a job that exits with 3"
printf '%s\n' '```bash markpact:run' 'kill -KILL $$' '```' >"$WORK/killed.md"
rc=0; "$PACTOWN" run --once "$WORK/killed.md" --service-id killed >/dev/null 2>"$WORK/killed.err" || rc=$?
assert_eq "$rc" 137 "exit code of a job killed by SIGKILL (128+9)"
grep -q "killed by signal 9" "$WORK/killed.err" || fail "signal not named: $(cat "$WORK/killed.err")"
printf '%s\n' '```bash markpact:run' 'tr a-z A-Z' '```' >"$WORK/stdin.md"
assert_eq "$(echo hello | "$PACTOWN" run --once "$WORK/stdin.md" --service-id upper 2>/dev/null)" HELLO \
    "a job reads pactown's stdin"
# --once --test: the job, then its shell tests
out=$("$PACTOWN" run --once --test "$WORK/job.md" --service-id job 2>/dev/null) || fail "run --once --test: $out"
grep -qx "PASS shell: test -f cli.py" <<<"$out" || fail "shell test line: $out"
echo "$out" | tail -n 1 | grep -qx "2 passed, 0 failed" || fail "total: $out"
# the same job without --once: said to be a job
rc=0; "$PACTOWN" run "$WORK/job.md" --service-id job2 --port "$(free_port)" >/dev/null 2>"$WORK/job2.err" || rc=$?
assert_eq "$rc" 5 "exit code of a job run as a service"
grep -q "looks like a job.*pactown run --once" "$WORK/job2.err" || fail "no --once hint: $(cat "$WORK/job2.err")"

# ---- health ----
# a port another program holds: refused before starting, holder named
taken=$(free_port)
python3 -m http.server "$taken" --bind 127.0.0.1 >/dev/null 2>&1 &
squatter=$!
EXTRA_PIDS="$EXTRA_PIDS $squatter"
wait_until 10 sh -c "[ \"\$(python3 -c 'import socket; s=socket.socket(); print(s.connect_ex((\"127.0.0.1\", $taken)))')\" = 0 ]" \
    || fail "the squatter did not listen"
app_readme "$WORK/app.md"
rc=0; "$PACTOWN" run "$WORK/app.md" --service-id sq --port "$taken" --detach >/dev/null 2>"$WORK/sq.err" || rc=$?
assert_eq "$rc" 11 "exit code for a port held by another program"
grep -q "port $taken on 127.0.0.1 is taken" "$WORK/sq.err" || fail "refusal: $(cat "$WORK/sq.err")"
grep -q "port $taken is held by pid $squatter (.*http.server $taken" "$WORK/sq.err" \
    || fail "the holder is not named: $(cat "$WORK/sq.err")"
# a service that answers through another process group's listener is never healthy
cat >"$WORK/foreign.md" <<'MD'
```bash markpact:run
setsid python3 -m http.server "$PORT" --bind 127.0.0.1 >/dev/null 2>&1 & echo $! > foreign.pid; exec sleep 1000
```
MD
pfor=$(free_port)
rc=0; "$PACTOWN" run "$WORK/foreign.md" --service-id foreign --port "$pfor" --timeout 2 >/dev/null 2>"$WORK/foreign.err" || rc=$?
fpid=$(cat "$WORK/sandboxes/foreign/foreign.pid" 2>/dev/null || true)
[ -n "$fpid" ] && EXTRA_PIDS="$EXTRA_PIDS $fpid"
assert_eq "$rc" 6 "exit code when only another program answers on the port"
grep -q "another program holds it" "$WORK/foreign.err" || fail "foreign port: $(cat "$WORK/foreign.err")"
grep -q "port $pfor is held by pid $fpid" "$WORK/foreign.err" || fail "holder: $(cat "$WORK/foreign.err")"
[ -n "$fpid" ] && kill "$fpid"
# a service that dies on EADDRINUSE (it binds a port another program holds): a failure
printf '%s\n' '```bash markpact:run' "python3 -m http.server $taken --bind 127.0.0.1" '```' >"$WORK/inuse.md"
rc=0; "$PACTOWN" run "$WORK/inuse.md" --service-id inuse --port "$(free_port)" --timeout 20 >/dev/null 2>"$WORK/inuse.err" || rc=$?
assert_eq "$rc" 5 "exit code of a service that dies on EADDRINUSE"
kill "$squatter"

# pactown's probe: /health 404 falls back to /; 5xx retried and reported
p=$(free_port)
out=$("$PACTOWN" run "$WORK/app.md" --service-id h404 --port "$p" --env HEALTH=404 --detach 2>&1) || fail "run h404: $out"
grep -q "running in .*:$p/ -> 200" <<<"$out" || fail "not healthy through /: $out"
"$PACTOWN" stop h404 >/dev/null
p=$(free_port)
out=$("$PACTOWN" run "$WORK/app.md" --service-id h200 --port "$p" --detach 2>&1) || fail "run h200: $out"
grep -q "running in .*:$p/health -> 200" <<<"$out" || fail "not healthy through /health: $out"
"$PACTOWN" stop h200 >/dev/null
rc=0; "$PACTOWN" run "$WORK/app.md" --service-id h503 --port "$(free_port)" --env HEALTH=503 --env ROOT=503 \
    --timeout 2 >/dev/null 2>"$WORK/h503.err" || rc=$?
assert_eq "$rc" 6 "exit code of a service that answers 503"
grep -Eq "last answer: /(health)? -> 503 for [12] s" "$WORK/h503.err" || fail "last answer: $(cat "$WORK/h503.err")"

# ---- the README's tests ----
app_readme "$WORK/tested.md" '```http markpact:test http' '# the API' 'GET /health EXPECT 200' \
    'POST /items BODY {"title": "x"} EXPECT 201' 'GET /old EXPECT 302' 'DELETE /items EXPECT 501' '```' \
    '```bash markpact:test shell' 'test -f app.py' 'test "$PORT" -gt 0' '```'
out=$("$PACTOWN" run --test "$WORK/tested.md" --service-id tested --port "$(free_port)" 2>"$WORK/tested.err") \
    || fail "run --test: $out $(cat "$WORK/tested.err")"
assert_eq "$out" "PASS GET /health -> 200
PASS POST /items -> 201
PASS GET /old -> 302
PASS DELETE /items -> 501
PASS shell: test -f app.py
PASS shell: test \"\$PORT\" -gt 0
6 passed, 0 failed" "run --test report"
grep -q "stopped tested after its tests" "$WORK/tested.err" || fail "the service was not stopped: $(cat "$WORK/tested.err")"
app_readme "$WORK/failing.md" '```http markpact:test' 'POST /items BODY {"name": "x"} EXPECT 201' 'GET /nope' '```' \
    '```bash markpact:test shell' 'echo "to the log"; exit 4' '```'
rc=0; out=$("$PACTOWN" run --test "$WORK/failing.md" --service-id failing --port "$(free_port)" 2>"$WORK/failing.err") || rc=$?
assert_eq "$rc" 10 "exit code when a test fails"
grep -qx "FAIL POST /items -> 422, expected 201" <<<"$out" || fail "failing line: $out"
grep -qx "FAIL GET /nope -> 404, expected 200..399" <<<"$out" || fail "failing line: $out"
grep -qx "FAIL shell: echo \"to the log\"; exit 4 -> exited with 4" <<<"$out" || fail "failing shell line: $out"
grep -q "    to the log" "$WORK/failing.err" || fail "the shell test's output is not shown: $(cat "$WORK/failing.err")"
echo "$out" | tail -n 1 | grep -qx "0 passed, 3 failed" || fail "total: $out"
# pactown test ID against a detached service, and --json
pt=$(free_port)
"$PACTOWN" run "$WORK/tested.md" --service-id live --port "$pt" --detach >/dev/null 2>&1 || fail "run live"
out=$("$PACTOWN" test live) || fail "pactown test live: $out"
echo "$out" | tail -n 1 | grep -qx "6 passed, 0 failed" || fail "pactown test: $out"
"$PACTOWN" test live --json | python3 -c "
import json, sys
r = json.load(sys.stdin)
assert r['service'] == 'live' and r['passed'] == 6 and r['failed'] == 0, r
t = r['tests'][1]
assert (t['kind'], t['method'], t['path'], t['status'], t['expect'], t['passed']) == ('http', 'POST', '/items', 201, '201', True), t
assert r['tests'][4]['kind'] == 'shell' and r['tests'][4]['exit_code'] == 0, r" || fail "pactown test --json"
# the service's own output must not mix into the report: it goes to stderr
app_readme "$WORK/chatty.md" '```http markpact:test' 'GET /health' '```'
sed -i 's|^python app.py$|echo "chatty on stdout"; python app.py|' "$WORK/chatty.md"
"$PACTOWN" run --test --json "$WORK/chatty.md" --service-id chatty --port "$(free_port)" 2>"$WORK/chatty.err" \
    | python3 -c "import json,sys; assert json.load(sys.stdin)['passed'] == 1" || fail "run --test --json: not pure JSON"
grep -q "chatty on stdout" "$WORK/chatty.err" || fail "the service's output is lost: $(cat "$WORK/chatty.err")"
rc=0; "$PACTOWN" run --test --json "$WORK/failing.md" --service-id failing --port "$(free_port)" 2>/dev/null \
    >"$WORK/failing.json" || rc=$?
assert_eq "$rc" 10 "exit code of run --test --json with failures"
python3 -c "
import json
r = json.load(open('$WORK/failing.json'))
assert r['failed'] == 3 and r['tests'][2]['output'] == 'to the log\n', r" || fail "run --test --json: $(cat "$WORK/failing.json")"
"$PACTOWN" stop live >/dev/null
rc=0; "$PACTOWN" test live >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 5 "pactown test of a stopped service"
rc=0; "$PACTOWN" test nosuch >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 8 "pactown test of an unknown service"
# no test block: said
out=$("$PACTOWN" run --test "$WORK/app.md" --service-id untested --port "$(free_port)" 2>&1) || fail "run --test untested: $out"
grep -q "app.md has no markpact:test block" <<<"$out" || fail "no-test message: $out"
# a bad test line: the README's line and the reason
app_readme "$WORK/badtest.md" '```http markpact:test' 'GET /health EXPECT ok' '```'
rc=0; "$PACTOWN" run --test "$WORK/badtest.md" --service-id badtest --port "$(free_port)" >/dev/null 2>"$WORK/badtest.err" || rc=$?
assert_eq "$rc" 3 "exit code for a bad test line"
line=$(grep -n 'EXPECT ok' "$WORK/badtest.md" | cut -d: -f1)
grep -q "badtest.md:$line: .*EXPECT needs a status 100..599" "$WORK/badtest.err" || fail "bad test line: $(cat "$WORK/badtest.err")"

# a README with no markpact blocks at all
printf '# just prose\n\n```python\nprint(1)\n```\n' >"$WORK/prose.md"
rc=0; "$PACTOWN" run "$WORK/prose.md" >/dev/null 2>"$WORK/prose.err" || rc=$?
assert_eq "$rc" 3 "exit code for a README without markpact blocks"
grep -q "prose.md: no markpact blocks at all" "$WORK/prose.err" || fail "prose: $(cat "$WORK/prose.err")"
# a leader that exits once its server runs: ps, stop and rm agree that the service runs
printf '```bash markpact:run\npython3 -m http.server "$PORT" --bind 127.0.0.1 >/dev/null 2>&1 & echo $! > server.pid; sleep 1\n```\n' >"$WORK/lead.md"
"$PACTOWN" run "$WORK/lead.md" --service-id lead --port "$(free_port)" --detach >/dev/null 2>&1 || fail "run lead"
spid=$(cat "$WORK/sandboxes/lead/server.pid")
EXTRA_PIDS="$EXTRA_PIDS $spid"
leader=$("$PACTOWN" ps --json | python3 -c "import json,sys; print({s['id']: s['pid'] for s in json.load(sys.stdin)}['lead'])")
wait_until 10 proc_gone "$leader" || fail "the leader of lead did not exit"
"$PACTOWN" ps | grep -q '^lead  *running' || fail "ps does not show lead running: $("$PACTOWN" ps --all)"
rc=0; "$PACTOWN" rm lead >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 9 "rm of a service whose leader exited but whose server runs"
"$PACTOWN" stop lead >/dev/null || fail "stop lead"
wait_until 10 proc_gone "$spid" || fail "stop left the server of lead running"
"$PACTOWN" rm lead >/dev/null || fail "rm lead after stop"
pass
