#!/usr/bin/env bash
# Bad input gets a clear error, the documented exit code, and loses nothing:
# malformed READMEs, bad requirement lines, hostile paths and ids, a missing
# mount, a service that exits, a service that never answers.
. "$(dirname "$0")/lib.sh"

# expect_exit CODE PATTERN CMD...: run CMD, check its exit code and that stderr matches PATTERN
expect_exit() {
    local want=$1 pattern=$2 rc=0; shift 2
    "$@" >"$WORK/out" 2>&1 || rc=$?
    [ "$rc" = "$want" ] || fail "$*: exit $rc, expected $want: $(cat "$WORK/out")"
    grep -qE -- "$pattern" "$WORK/out" || fail "$*: message does not match '$pattern': $(cat "$WORK/out")"
}

write_readme "$WORK/ok.md" ptdemo-app
expect_exit 7 "pactownfs is not mounted at $MNT" "$PACTOWN" run "$WORK/ok.md" --service-id x
mount_start

printf '# t\n```text markpact:deps python\nflask\n```\n```bash markpact:run\npython app.py\n' >"$WORK/unclosed.md"
expect_exit 3 "unclosed.md:5: .*never closed" "$PACTOWN" run "$WORK/unclosed.md"

printf '```text markpact:deps python\nflask\nflask; rm -rf /\n```\n```bash markpact:run\nx\n```\n' >"$WORK/req.md"
expect_exit 3 "req.md:3: " "$PACTOWN" run "$WORK/req.md"
printf '```text markpact:deps python\n-e git+https://example.invalid/x.git\n```\n```bash markpact:run\nx\n```\n' >"$WORK/edit.md"
expect_exit 3 "edit.md:2: " "$PACTOWN" run "$WORK/edit.md"
printf '```text markpact:deps python\nflask\n```\n' >"$WORK/norun.md"
expect_exit 3 "no markpact:run block" "$PACTOWN" run "$WORK/norun.md"
printf '```bash markpact:run\na\n```\n```bash markpact:run\nb\n```\n' >"$WORK/tworun.md"
# a second run block wins, as in pactown, with a warning naming both lines
out=$("$PACTOWN" run --once "$WORK/tworun.md" --service-id tworun 2>&1 || true)
grep -q "warning: $WORK/tworun.md:4: second markpact:run block: it replaces the one at line 1" <<<"$out" \
    || fail "second run block: $out"
expect_exit 3 "nosuch.md: No such file" "$PACTOWN" run "$WORK/nosuch.md"

for path in ../escape.txt /etc/evil a/../../x .venv/bin/python; do
    printf '```text markpact:file path=%s\nx\n```\n```bash markpact:run\nx\n```\n' "$path" >"$WORK/path.md"
    expect_exit 3 "path.md:1: " "$PACTOWN" run "$WORK/path.md" --service-id p
done
[ ! -e "$WORK/escape.txt" ] && [ ! -e /etc/evil ] || fail "a hostile path was written"

# a symlink planted in the sandbox is never followed
mkdir -p "$WORK/sandboxes/s" "$WORK/outside"
ln -s "$WORK/outside" "$WORK/sandboxes/s/app"
printf '```text markpact:file path=app/x.py\nx\n```\n```bash markpact:run\nx\n```\n' >"$WORK/sym.md"
expect_exit 3 "sym.md:1: " "$PACTOWN" run "$WORK/sym.md" --service-id s
[ -z "$(ls "$WORK/outside")" ] || fail "a file was written through a planted symlink"

expect_exit 2 "service-id" "$PACTOWN" run "$WORK/ok.md" --service-id ../x
expect_exit 2 "service-id" "$PACTOWN" run "$WORK/ok.md" --service-id a/b
expect_exit 2 "port" "$PACTOWN" run "$WORK/ok.md" --port 70000
expect_exit 3 "argument: .*shell" "$PACTOWN" hash 'flask && rm -rf /'
expect_exit 3 "argument: .*--index-url: local paths and file: URLs are refused" "$PACTOWN" hash -- '--index-url=file:///x'
expect_exit 2 "unknown command" "$PACTOWN" frobnicate

# a service that exits at once: 5; one that never answers: 6, and it is stopped
printf '```text markpact:deps python\nptdemo-app\n```\n```bash markpact:run\necho bye; exit 3\n```\n' >"$WORK/exits.md"
expect_exit 5 "exited with 3" "$PACTOWN" run "$WORK/exits.md" --service-id ex
printf '```text markpact:deps python\nptdemo-app\n```\n```bash markpact:run\necho $$ > pid; exec sleep 1000\n```\n' >"$WORK/silent.md"
expect_exit 6 "was not healthy on .* within 1 s" "$PACTOWN" run "$WORK/silent.md" --service-id si --timeout 1 --detach
pid=$(cat "$WORK/sandboxes/si/pid")
wait_until 10 proc_gone "$pid" || fail "the service that timed out is still running"
pass
