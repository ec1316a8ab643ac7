#!/usr/bin/env bash
# README forms pactown accepts: includes (relative, no escape, cycles named),
# a file block without path= (main.py) and path=./x, no run block (inferred),
# later blocks win with a warning, template=true placeholders, .env and
# .env.example, markpact:build once, uvicorn added, Node deps refused.
. "$(dirname "$0")/lib.sh"
EXPECT_DAEMON='build of [0-9a-f]+ failed|uvicorn'
mount_start
mkdir -p "$WORK/r/parts"

# includes: the parts' blocks in the include's place; a later file block wins
cat >"$WORK/r/README.md" <<'MD'
# top
<!-- markpact:include path=parts/deps.md -->
```python markpact:file
import os, ptdemo_core
print("main core=%s greeting=%s" % (ptdemo_core.VERSION, open("greeting.txt").read().strip()))
```
```text markpact:file path=./greeting.txt
old
```
<!-- markpact:include path=parts/more.md -->
MD
printf '```text markpact:deps python\nptdemo-core\n```\n' >"$WORK/r/parts/deps.md"
printf '```text markpact:file path=greeting.txt template=true\nhi ${env:WHO:-nobody} ${ask:Colour:-blue}\n```\n' \
    >"$WORK/r/parts/more.md"
out=$("$PACTOWN" run --once "$WORK/r/README.md" --service-id inc --env WHO=ann 2>"$WORK/inc.err") \
    || fail "run of a README with includes: $(cat "$WORK/inc.err")"
assert_eq "$out" "main core=2.0 greeting=hi ann blue" "output of the inferred run command"
grep -q "has no markpact:run block: running \`python main.py\`" "$WORK/inc.err" || fail "no inferred-run note: $(cat "$WORK/inc.err")"
grep -q "warning: markpact:file greeting.txt at line 7 is replaced by the one at parts/more.md:1" "$WORK/inc.err" \
    || fail "no later-wins warning: $(cat "$WORK/inc.err")"
# .env: PORT, MARKPACT_PORT and --env, private
grep -qx "WHO=ann" "$WORK/sandboxes/inc/.env" || fail ".env: $(cat "$WORK/sandboxes/inc/.env")"
grep -q "^MARKPACT_PORT=[0-9]" "$WORK/sandboxes/inc/.env" || fail ".env lacks MARKPACT_PORT"
assert_eq "$(stat -c %a "$WORK/sandboxes/inc/.env")" 600 "mode of .env"
# escapes and cycles
printf '<!-- markpact:include path=../outside.md -->\n' >"$WORK/r/esc.md"
rc=0; "$PACTOWN" run "$WORK/r/esc.md" >/dev/null 2>"$WORK/esc.err" || rc=$?
assert_eq "$rc" 3 "exit code of an include above the top directory"
grep -q "esc.md:1: .*leaves the top README's directory" "$WORK/esc.err" || fail "escape: $(cat "$WORK/esc.err")"
ln -s /etc "$WORK/r/parts/etc"
printf '<!-- markpact:include path=parts/etc/hostname -->\n' >"$WORK/r/link.md"
rc=0; "$PACTOWN" run "$WORK/r/link.md" >/dev/null 2>"$WORK/link.err" || rc=$?
assert_eq "$rc" 3 "exit code of an include through a symlink out"
grep -q "link.md:1: markpact:include path=parts/etc/hostname: a symlink leads out" "$WORK/link.err" || fail "symlink: $(cat "$WORK/link.err")"
printf '<!-- markpact:include path=b.md -->\n' >"$WORK/r/a.md"
printf 'x\n<!-- markpact:include path=a.md -->\n' >"$WORK/r/b.md"
rc=0; "$PACTOWN" run "$WORK/r/a.md" >/dev/null 2>"$WORK/cyc.err" || rc=$?
assert_eq "$rc" 3 "exit code of an include cycle"
grep -q "b.md:2: markpact:include of a.md is a cycle.*includes b.md" "$WORK/cyc.err" || fail "cycle: $(cat "$WORK/cyc.err")"

# a second run block wins, with a warning naming both lines; ${ask} without a default is an error
printf '```text markpact:deps python\nptdemo-core\n```\n```bash markpact:run\necho first\n```\n```bash markpact:run\necho second\n```\n' >"$WORK/two.md"
out=$("$PACTOWN" run --once "$WORK/two.md" --service-id two 2>"$WORK/two.err") || fail "two runs: $(cat "$WORK/two.err")"
assert_eq "$out" second "the later run block"
grep -q "two.md:7: second markpact:run block: it replaces the one at line 4" "$WORK/two.err" || fail "$(cat "$WORK/two.err")"
printf '```text markpact:file path=c.txt template=true\n${ask:Name}\n```\n```bash markpact:run\ncat c.txt\n```\n' >"$WORK/ask.md"
rc=0; "$PACTOWN" run --once "$WORK/ask.md" --service-id ask >/dev/null 2>"$WORK/ask.err" || rc=$?
assert_eq "$rc" 3 "exit code of an \${ask:} without a default"
grep -q 'ask.md:2: template placeholder ${ask:Name} has no default' "$WORK/ask.err" || fail "ask: $(cat "$WORK/ask.err")"

# .env.example: missing variables listed
printf '```text markpact:file path=.env.example\n# needed\nAPI_KEY=\nexport   DB_URL=x\nSET_ONE=1\n```\n```bash markpact:run\ntrue\n```\n' >"$WORK/envx.md"
rc=0; SET_ONE=yes "$PACTOWN" run --once "$WORK/envx.md" --service-id envx >/dev/null 2>"$WORK/envx.err" || rc=$?
assert_eq "$rc" 3 "exit code of missing .env.example variables"
grep -q "envx.md:1: the .env.example block lists 2 variables the environment lacks: API_KEY, DB_URL" "$WORK/envx.err" \
    || fail ".env.example: $(cat "$WORK/envx.err")"
SET_ONE=yes "$PACTOWN" run --once "$WORK/envx.md" --service-id envx --env API_KEY=k --env DB_URL=d >/dev/null 2>&1 \
    || fail "run with the .env.example variables set"

# markpact:build runs once per sandbox
printf '```bash markpact:build\necho built >> built.txt\n```\n```bash markpact:run\ncat built.txt\n```\n' >"$WORK/build.md"
"$PACTOWN" run --once "$WORK/build.md" --service-id bld >/dev/null 2>&1 || fail "run with markpact:build"
assert_eq "$("$PACTOWN" run --once "$WORK/build.md" --service-id bld 2>/dev/null)" built "markpact:build ran once"
printf '```bash markpact:build\nexit 3\n```\n```bash markpact:run\ntrue\n```\n' >"$WORK/badbuild.md"
rc=0; "$PACTOWN" run --once "$WORK/badbuild.md" --service-id bb >/dev/null 2>"$WORK/bb.err" || rc=$?
assert_eq "$rc" 4 "exit code of a failing markpact:build"
grep -q "markpact:build (line 1) exited with 3" "$WORK/bb.err" || fail "build step: $(cat "$WORK/bb.err")"

# uvicorn in the run command, not in the deps: added (part of the key)
printf '```text markpact:deps python\nptdemo-core\n```\n```bash markpact:run\nuvicorn main:app --port $PORT\n```\n' >"$WORK/uv.md"
"$PACTOWN" run "$WORK/uv.md" --service-id uv --prepare >/dev/null 2>"$WORK/uv.err" || true
grep -q "the run command uses uvicorn and the deps lack it: added uvicorn" "$WORK/uv.err" || fail "uvicorn: $(cat "$WORK/uv.err")"
grep -q "cache miss [0-9a-f]* (ptdemo-core, uvicorn)" "$WORK/uv.err" || fail "uvicorn not in the set: $(cat "$WORK/uv.err")"

# Node deps: refused, never read as Python
printf '# web\n```javascript markpact:deps\nexpress\n```\n' >"$WORK/node.md"
rc=0; "$PACTOWN" run "$WORK/node.md" >/dev/null 2>"$WORK/node.err" || rc=$?
assert_eq "$rc" 3 "exit code of Node deps"
grep -q "node.md:2: .*Node.js .*not supported yet" "$WORK/node.err" || fail "node: $(cat "$WORK/node.err")"
# includes: only regular files, and at most 64 in all (30 includes on each of 5 levels would be 24 million)
mkfifo "$WORK/r/fifo.md"
printf '<!-- markpact:include path=fifo.md -->\n' >"$WORK/r/fifo-top.md"
rc=0; timeout 20 "$PACTOWN" run --once "$WORK/r/fifo-top.md" >/dev/null 2>"$WORK/fifo.err" || rc=$?
assert_eq "$rc" 3 "exit code of an include of a FIFO"
grep -q "fifo-top.md:1: markpact:include path=fifo.md: not a regular file" "$WORK/fifo.err" || fail "fifo: $(cat "$WORK/fifo.err")"
mkdir -p "$WORK/r/many"
for l in 1 2 3 4 5; do for _ in $(seq 30); do echo "<!-- markpact:include path=l$((l + 1)).md -->"; done >"$WORK/r/many/l$l.md"; done
printf '```text markpact:file path=x.txt\nx\n```\n' >"$WORK/r/many/l6.md"
rc=0; timeout 20 "$PACTOWN" run --once "$WORK/r/many/l1.md" >/dev/null 2>"$WORK/many.err" || rc=$?
assert_eq "$rc" 3 "exit code of an include explosion"
grep -q "more than 64 included files" "$WORK/many.err" || fail "include explosion: $(cat "$WORK/many.err")"

# secrets stay the owner's: a planted temp name cannot make .env readable; filled templates and .pactown are private
printf '```text markpact:file path=.env.pactown-tmp\nplanted\n```\n```text markpact:file path=conf.py template=true\nKEY = "${env:API_KEY}"\n```\n```bash markpact:run\nstat -c %%a .env conf.py .pactown\n```\n' >"$WORK/sec.md"
out=$("$PACTOWN" run --once "$WORK/sec.md" --service-id sec --env API_KEY=s3cr3t 2>"$WORK/sec.err") || fail "sec: $(cat "$WORK/sec.err")"
assert_eq "$(echo $out)" "600 600 700" "modes of .env, a filled template and .pactown"
grep -qx 'KEY = "s3cr3t"' "$WORK/sandboxes/sec/conf.py" || fail "template: $(cat "$WORK/sandboxes/sec/conf.py")"
# ${NAME}: the environment, then markpact's secrets file beside the README
mkdir -p "$WORK/r/.markpact"
printf 'DB_PASS="from-file"\nOTHER=x\n' >"$WORK/r/.markpact/secrets.env"
printf '```text markpact:file path=s.txt template=true\n${DB_PASS} ${OTHER} ${env:DB_PASS:-none}\n```\n```bash markpact:run\ncat s.txt\n```\n' >"$WORK/r/secret.md"
assert_eq "$("$PACTOWN" run --once "$WORK/r/secret.md" --service-id secret 2>/dev/null)" "from-file x none" \
    "placeholders from the secrets file"
assert_eq "$(OTHER=env "$PACTOWN" run --once "$WORK/r/secret.md" --service-id secret 2>/dev/null)" "from-file env none" \
    "the environment before the secrets file"
# no run block, a markpact:target naming the framework: its default command (uvicorn added to the deps)
printf '```yaml markpact:target\nplatform: docker\nframework: "FastAPI"\n```\n```text markpact:deps python\nptdemo-core\n```\n```python markpact:file path=app.py\napp = None\n```\n' >"$WORK/target.md"
"$PACTOWN" run "$WORK/target.md" --service-id target --prepare >/dev/null 2>"$WORK/target.err" || true
grep -qF 'running `uvicorn app:app --host "$HOST" --port "$PORT"` (markpact:target framework fastapi)' "$WORK/target.err" \
    || fail "target: $(cat "$WORK/target.err")"
grep -q "added uvicorn" "$WORK/target.err" || fail "target: uvicorn not added: $(cat "$WORK/target.err")"
pass
