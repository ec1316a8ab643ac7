#!/usr/bin/env bash
# Requirement lines real READMEs use, offline against a PEP 503 index the
# test serves on loopback: --index-url/-i and --extra-index-url lines are
# part of the set (canonical text and key), a direct reference `name @ URL`
# is keyed by its exact URL, --hash is kept and enforced by the installer, a
# +local version installs from its index; -e, local paths and -r are refused.
. "$(dirname "$0")/lib.sh"
# no daemon-wide index, find-links or offline mode: the README names its index
unset PACTOWN_FIND_LINKS PACTOWN_NO_INDEX PACTOWN_OFFLINE
EXPECT_DAEMON='build of [0-9a-f]+ failed|[Hh]ash'
python3 "$SRC/tests/fixtures/auth_index.py" "$WHEELHOUSE" - "$WORK/index.port" &
EXTRA_PIDS=$!
wait_until 10 test -s "$WORK/index.port" || fail "the test index did not start"
ip=$(cat "$WORK/index.port")
IDX=http://127.0.0.1:$ip
mount_start

core_sha=$(sha256sum "$WHEELHOUSE/ptdemo_core-2.0-py3-none-any.whl" | cut -d' ' -f1)
deps() {  # FILE HASH [EXTRA-INDEX]
    cat >"$1" <<MD
\`\`\`text markpact:deps python
-i $IDX/simple/
--extra-index-url ${3:-$IDX/simple/}
ptdemo-local==1.0+cpu
PTDemo_Extra @ $IDX/files/ptdemo_extra-1.0-py3-none-any.whl
ptdemo-core==2.0 --hash=sha256:$2
\`\`\`
\`\`\`bash markpact:run
python -c "import ptdemo_local, ptdemo_extra, ptdemo_core; print(ptdemo_local.BUILD, ptdemo_extra.NAME, ptdemo_core.VERSION)"
\`\`\`
MD
}
deps "$WORK/a.md" "$core_sha"
out=$("$PACTOWN" run --once "$WORK/a.md" --service-id a 2>"$WORK/a.err") || fail "run: $(cat "$WORK/a.err")"
assert_eq "$out" "cpu extra 2.0" "the venv built from the README's index"
key=$(basename "$(readlink "$WORK/sandboxes/a/.venv")")
"$PACTOWN" cache show "$key" >"$WORK/show.txt" || fail "cache show"
for line in "--extra-index-url $IDX/simple/" "--index-url $IDX/simple/" "ptdemo-local==1.0+cpu" \
            "ptdemo-extra @ $IDX/files/ptdemo_extra-1.0-py3-none-any.whl" "ptdemo-core==2.0 --hash=sha256:$core_sha"; do
    grep -qxF -- "$line" "$WORK/show.txt" || fail "canonical text lacks '$line': $(cat "$WORK/show.txt")"
done
# pactown hash shows the same lines; another index is another key
sed -n '/markpact:deps/,/^```$/p' "$WORK/a.md" | sed '1d;$d' >"$WORK/reqs.txt"
"$PACTOWN" hash -r "$WORK/reqs.txt" | grep -qxF -- "--extra-index-url $IDX/simple/" || fail "pactown hash: no index line"
k1=$("$PACTOWN" hash -r "$WORK/reqs.txt" | sed -n 's/^key //p')
assert_eq "$k1" "$key" "key of pactown hash and of the run"
sed "s|--extra-index-url .*|--extra-index-url http://127.0.0.1:$ip/other/|" "$WORK/reqs.txt" >"$WORK/reqs2.txt"
k2=$("$PACTOWN" hash -r "$WORK/reqs2.txt" | sed -n 's/^key //p')
[ -n "$k2" ] && [ "$k2" != "$k1" ] || fail "another --extra-index-url gives the same key ($k1)"
# the URL is kept as written: its case is part of the key
sed "s|ptdemo_extra-1.0|PTDEMO_extra-1.0|" "$WORK/reqs.txt" >"$WORK/reqs3.txt"
grep -q "PTDEMO_extra-1.0-py3-none-any.whl" <("$PACTOWN" hash -r "$WORK/reqs3.txt") || fail "the URL was lower-cased"

# a wrong hash: the installer refuses, the build fails
deps "$WORK/bad.md" "$(printf '0%.0s' $(seq 64))"
rc=0; "$PACTOWN" run --once "$WORK/bad.md" --service-id bad >/dev/null 2>"$WORK/bad.err" || rc=$?
assert_eq "$rc" 4 "exit code of a set whose --hash does not match"
grep -qi "hash" "$WORK/bad.err" || fail "the hash mismatch is not said: $(cat "$WORK/bad.err")"
# run again at once: the remembered failure is said as such, not as a new build
rc=0; "$PACTOWN" run --once "$WORK/bad.md" --service-id bad >/dev/null 2>"$WORK/bad2.err" || rc=$?
assert_eq "$rc" 4 "exit code of a remembered failed build"
grep -q "failed [0-9]* s ago and is remembered for 60 s (failure_ttl); .pactown cache rm" "$WORK/bad2.err" \
    || fail "remembered failure: $(cat "$WORK/bad2.err")"
grep -q "cache miss" "$WORK/bad2.err" && fail "a remembered failure is called a cache miss: $(cat "$WORK/bad2.err")"

# still refused, with the README's line and the reason
for bad in "-e ." "./local/pkg" "-r other.txt" "--index-url https://u:secret@example.com/simple" \
           "x @ file:///tmp/x.whl"; do
    printf '```text markpact:deps python\nptdemo-core\n%s\n```\n```bash markpact:run\ntrue\n```\n' "$bad" >"$WORK/r.md"
    rc=0; "$PACTOWN" run --once "$WORK/r.md" --service-id r >/dev/null 2>"$WORK/r.err" || rc=$?
    assert_eq "$rc" 3 "exit code for '$bad'"
    grep -q "r.md:3: " "$WORK/r.err" || fail "'$bad': $(cat "$WORK/r.err")"
    case $bad in *secret*) grep -q "credentials in a README's URL are refused" "$WORK/r.err" || fail "$(cat "$WORK/r.err")"
                           grep -q secret "$WORK/r.err" && fail "the credential is echoed: $(cat "$WORK/r.err")" ;; esac
done
pass
