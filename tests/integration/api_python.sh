#!/usr/bin/env bash
# The Python package: its wheel builds (pip, offline, setuptools from the
# system), installs into a fresh venv without touching a `pactown` module or
# script, and its tests (python/tests) pass against a real pactown serve,
# the Fast Start page's Quick Start among them.
. "$(dirname "$0")/lib.sh"
mount_start
TOKEN=py-$RANDOM$RANDOM
printf '%s\n' "$TOKEN" >"$WORK/token"
chmod 600 "$WORK/token"
serve_start --token-file "$WORK/token"

# Debian's python3 with python3-setuptools and python3-wheel (tools/setup) builds it offline
SYSPY=/usr/bin/python3
"$SYSPY" -c 'import setuptools, wheel' 2>/dev/null || fail "$SYSPY lacks setuptools or wheel (tools/setup installs them)"
cp -r "$SRC/python" "$WORK/python"
"$SYSPY" -m pip wheel --quiet --no-deps --no-build-isolation --no-index -w "$WORK/dist" "$WORK/python" \
    >"$WORK/wheel.log" 2>&1 || fail "the wheel does not build: $(tail -20 "$WORK/wheel.log")"
whl=$(ls "$WORK"/dist/pactown_fs-*.whl) || fail "no wheel in $WORK/dist"
python3 -m zipfile -l "$whl" | awk 'NR>1 {print $1}' | grep -v '^pactown_fs/\|^pactown_fs-[0-9.]*\.dist-info/' \
    && fail "the wheel holds files outside pactown_fs/"
"$SYSPY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --no-index "$whl" >"$WORK/install.log" 2>&1 \
    || fail "the wheel does not install: $(tail -20 "$WORK/install.log")"
[ ! -e "$WORK/venv/bin/pactown" ] || fail "the package installed a pactown script"

write_readme "$WORK/a.md" ptdemo-core ptdemo-app
write_readme "$WORK/b.md" ptdemo-core==1.0 ptdemo-app
printf '```bash markpact:run\necho job ran; exit 3\n```\n' >"$WORK/job.md"
cd "$WORK"
# the token as read from a file, newline and all: the client strips it
PACTOWN_API="unix://$SOCK" PACTOWN_RUNNER_TOKEN="$(cat "$WORK/token")
" PTFS_README_A=$WORK/a.md PTFS_README_B=$WORK/b.md PTFS_JOB_README=$WORK/job.md \
    "$WORK/venv/bin/python" -m unittest discover -v -s "$SRC/python/tests" >"$WORK/unittest.log" 2>&1 \
    || fail "python tests: $(tail -40 "$WORK/unittest.log")"
grep -q "skipped" "$WORK/unittest.log" && grep "skipped" "$WORK/unittest.log"
grep -q "^Ran [0-9]* tests" "$WORK/unittest.log" || fail "no test ran: $(cat "$WORK/unittest.log")"
say "$(grep "^Ran" "$WORK/unittest.log")"
pass
