#!/usr/bin/env bash
# 50 /run requests at once over 5 requirement sets (wheelhouse, offline):
# 5 builds, every run succeeds, no port handed out twice, each port serves
# its own service; /status answers while builds are in progress. Then a build
# held in the installer (blocking-uv) holds up neither /status nor a cache-hit
# run, and its own run ends well once it is let go.
. "$(dirname "$0")/lib.sh"
block_builds_on ptdemo-app
mount_start -o uv="$BLOCKING_UV"
serve_start

sets=("ptdemo-core==1.0" "ptdemo-core==2.0" "ptdemo-core ptdemo-extra" "ptdemo-tools" "ptdemo-local")
for i in 0 1 2 3 4; do
    {
        echo '```text markpact:deps python'
        printf '%s\n' ${sets[$i]}
        echo '```'
        echo '```python markpact:file path=srv.py'
        echo 'import http.server, os, sys'
        echo 'class H(http.server.BaseHTTPRequestHandler):'
        echo '    def do_GET(self):'
        echo '        self.send_response(200); self.end_headers(); self.wfile.write(os.path.basename(os.getcwd()).encode())'
        echo '    def log_message(self, *a): pass'
        echo 'http.server.HTTPServer(("127.0.0.1", int(os.environ["MARKPACT_PORT"])), H).serve_forever()'
        echo '```'
        echo '```bash markpact:run'
        echo 'exec python srv.py'
        echo '```'
    } >"$WORK/set$i.md"
done

python3 - "$SOCK" "$WORK" <<'PY' || fail "concurrent runs (see above)"
import http.client, json, socket, sys, threading, urllib.request
sock, work = sys.argv[1], sys.argv[2]

class U(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(sock)

def call(method, path, body=None):
    c = U("runner", timeout=300)
    c.request(method, path, body=json.dumps(body) if body is not None else None)
    r = c.getresponse()
    return r.status, json.loads(r.read())

readmes = [open("%s/set%d.md" % (work, i)).read() for i in range(5)]
before = call("GET", "/cache/stats")[1]
results = [None] * 50
def run(i):
    results[i] = call("POST", "/run", {"project_id": 100 + i, "readme_content": readmes[i % 5], "port": 0})
threads = [threading.Thread(target=run, args=(i,)) for i in range(50)]
for t in threads: t.start()
# while the first builds are in progress, /status answers at once
st, d = call("GET", "/status")
assert st == 200 and "services" in d, (st, d)
for t in threads: t.join()
bad = [(i, r) for i, r in enumerate(results) if r[0] != 200 or not r[1]["success"]]
assert not bad, "failed runs: %s" % json.dumps(bad[:3])[:3000]
ports = [r[1]["port"] for r in results]
assert len(set(ports)) == 50, "a port was handed out twice: %s" % sorted(ports)
for i, r in enumerate(results):
    got = urllib.request.urlopen("http://127.0.0.1:%d/" % r[1]["port"], timeout=10).read().decode()
    assert got == str(100 + i), "port %d serves %r, not service %d" % (r[1]["port"], got, 100 + i)
after = call("GET", "/cache/stats")[1]
assert after["builds"] - before["builds"] == 5, "builds: %d" % (after["builds"] - before["builds"])
assert after["cache_entries"] == 5, after["cache_entries"]
hits = sum(1 for r in results if r[1]["cache_hit"])  # runs that came while their set was built waited for it
for i in range(50):
    st, d = call("POST", "/stop", {"project_id": 100 + i})
    assert st == 200 and d["success"], (st, d)
st, d = call("GET", "/status")
assert d["services"] == [], d
print("50 runs, 5 builds, %d cache hits, 50 distinct ports" % hits)
PY

write_readme "$WORK/held.md" ptdemo-core ptdemo-app
body=$(python3 -c 'import json,sys; print(json.dumps({"project_id": 300, "readme_content": open(sys.argv[1]).read()}))' "$WORK/held.md")
curl -sS --max-time 120 --unix-socket "$SOCK" --data-binary "$body" -o "$WORK/held.json" http://runner/run &
held=$!
wait_until 20 test -e "$PT_BLOCK_MARK" || fail "the held build did not start"
# /run/stream of another id on the same held set: its lines arrive while the build is held
body2=$(python3 -c 'import json,sys; print(json.dumps({"project_id": 302, "readme_content": open(sys.argv[1]).read()}))' "$WORK/held.md")
curl -sS -N --max-time 120 --unix-socket "$SOCK" --data-binary "$body2" -o "$WORK/held-stream.out" http://runner/run/stream &
streamed=$!
wait_until 10 grep -q '"type":"log","message":"cache miss' "$WORK/held-stream.out" \
    || fail "no streamed line while the build is held: $(cat "$WORK/held-stream.out")"
grep -q '"type":"result"' "$WORK/held-stream.out" && fail "the stream ended before the build was let go"
out=$(curl -sS --max-time 5 --unix-socket "$SOCK" http://runner/status) || fail "/status waited on the held build"
[[ $out == *'"services"'* ]] || fail "/status during the held build: $out"
body=$(python3 -c 'import json,sys; print(json.dumps({"project_id": 301, "readme_content": open(sys.argv[1]).read()}))' "$WORK/set0.md")
out=$(curl -sS --max-time 10 --unix-socket "$SOCK" --data-binary "$body" http://runner/run) \
    || fail "a cache-hit run waited on the held build"
[[ $out == *'"success":true'* && $out == *'"cache_hit":true'* ]] || fail "cache-hit run during the held build: $out"
kill -0 "$held" || fail "the held run ended before its build was let go: $(cat "$WORK/held.json")"
release_builds
wait "$held" || fail "the held run: curl failed"
grep -q '"success":true' "$WORK/held.json" || fail "the held run: $(cat "$WORK/held.json")"
wait "$streamed" || fail "the streamed run: curl failed"
tail -n 1 "$WORK/held-stream.out" | grep -q '"type":"result","result":{"success":true' \
    || fail "the streamed run's result: $(tail -n 2 "$WORK/held-stream.out")"
pass
