#!/usr/bin/env bash
# Wheels that install with uv alone and try to break the shared store (issue
# 12; tests/fixtures/make_hostile_wheels.py):
# - a pyvenv.cfg shipped in .data/data is refused, and runs none of its code
#   as root meanwhile (with the store's uv cache, and with one of one's own)
# - a file named __pycache__ does not fail the build, and a wheel's own,
#   stale, .pyc is not what the venv gets (first build and uv's links after)
# - the prune names a wheel by its METADATA, not by top-level names that look
#   like another's dist-info, and a deep wheel does not stop it, nor the
#   store's measure, nor the removal of its venv
# - a pactown-build killed in the bytecode step leaves none of its processes,
#   and the daemon removes its half venv and staging at once
. "$(dirname "$0")/lib.sh"
[ -n "$UV_BIN" ] || skip "uv is not installed: venvs share files only when uv builds them"
PY=${PACTOWN_PYTHON:-python3}
S=$WORK/cache/store

# the standard library a hostile pyvenv.cfg points at: importing it as root would leave $EVIL/RAN
EVIL=$WORK/evil
pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
base_path=$("$PY" -I -S -c 'import sys; print(repr([p for p in sys.path if p]))')
mkdir -p "$EVIL/bin" "$EVIL/lib/python$pyver/encodings"
: > "$EVIL/lib/python$pyver/os.py"
cat > "$EVIL/lib/python$pyver/encodings/__init__.py" <<PY
import posix, sys
posix.close(posix.open("$EVIL/RAN", posix.O_WRONLY | posix.O_CREAT, 0o644))
sys.path[:] = $base_path
del sys.modules["encodings"]
import encodings
PY
"$PY" "$SRC/tests/fixtures/make_hostile_wheels.py" "$WORK/hostile" "$EVIL/bin" || fail "make_hostile_wheels.py"
mkdir -p "$WORK/wh" && cp "$WHEELHOUSE"/*.whl "$WORK"/hostile/*.whl "$WORK/wh/"
export PACTOWN_FIND_LINKS=$WORK/wh

mount_start -o min_idle_seconds=0 -o evict_interval=3600 -o wheel_keep_hours=0 -o max_entries=0 -o max_age_hours=0
prewarm() { "$PACTOWN" cache prewarm "$@" 2>>"$WORK/prewarm.log" | tail -n 1 | cut -d' ' -f1; }
site_of() { echo "$S/$1"/lib/python3*/site-packages; }
tag=$("$PY" -c 'import sys; print(sys.implementation.cache_tag)')

# --- a wheel's pyvenv.cfg (its .data/data/ files go to the venv's root): the
# build is refused, since it would decide the standard library every later
# start of the venv runs (the services', with their uids), and nothing of the
# standard library it points at runs meanwhile (the bytecode step runs the
# base interpreter, never <venv>/bin/python)
refused_venvcfg() {
    local how=$1; shift
    local rc=0
    "$PACTOWN" cache prewarm "$@" >"$WORK/venvcfg.out" 2>&1 || rc=$?
    assert_eq "$rc" 4 "$how: exit code of a set whose wheel replaces pyvenv.cfg ($(cat "$WORK/venvcfg.out"))"
    [ ! -e "$EVIL/RAN" ] || fail "$how: the build ran the standard library a wheel's pyvenv.cfg points at (as root)"
    local k
    k=$(register "$@")
    grep -q "replaced pyvenv.cfg" "$WORK/cache/logs/$k.log" \
        || fail "$how: the build log does not say why: $(tail -n 5 "$WORK/cache/logs/$k.log")"
    [ ! -e "$S/$k" ] || fail "$how: the refused venv is in the store"
}
refused_venvcfg "the store's uv cache" ptx-venvcfg

# --- a file named __pycache__; a wheel's own, stale, bytecode
k=$(prewarm ptx-pcfile) || true
[ -n "$k" ] || fail "a file named __pycache__ fails the build: $(tail -n 8 "$WORK/prewarm.log")"
"$S/$k/bin/python" -c 'import ptx_pcfile' || fail "ptx_pcfile does not import"
for extra in "" ptdemo-extra; do  # compiled in this build; linked by uv from the archive
    k=$(prewarm ptx-shipped $extra) || true
    [ -n "$k" ] || fail "prewarm ptx-shipped $extra: $(tail -n 5 "$WORK/prewarm.log")"
    v=$("$S/$k/bin/python" -v -c 'import ptx_shipped' 2>&1)
    grep -q "ptx_shipped/__pycache__/__init__.$tag.pyc matches" <<<"$v" \
        || fail "ptx-shipped $extra: the venv's bytecode is not that of its source: $(grep ptx_shipped <<<"$v" | head -n 3)"
done

# --- the prune names a wheel by its METADATA
arch() { find "$S/.uv" -maxdepth 3 -path "*archive-v*/*/$1" | sed -n 1p; }
kd=$(prewarm ptx-decoy) && kc=$(prewarm "ptdemo-core==2.0") || true
[ -n "$kd" ] && [ -n "$kc" ] || fail "prewarm: $(tail -n 5 "$WORK/prewarm.log")"
"$PACTOWN" cache rm "$kc" >/dev/null && "$PACTOWN" cache gc >/dev/null || fail "cache rm, gc"
wait_until 10 sh -c "[ -z \"\$(find '$S/.uv' -maxdepth 3 -path '*archive-v*/*/ptdemo_core-2.0.dist-info')\" ]" \
    || fail "ptdemo-core 2.0, linked by no venv, was kept: ptx-decoy's top-level files pass for its dist-info"
"$PACTOWN" cache rm "$kd" >/dev/null && "$PACTOWN" cache gc >/dev/null || fail "cache rm, gc"
wait_until 10 sh -c "[ -z \"\$(find '$S/.uv' -maxdepth 3 -path '*archive-v*/*/ptx_decoy-1.0.dist-info')\" ]" \
    || fail "ptx-decoy, linked by no venv, was never pruned"

# --- a deep wheel: the prune goes on
kdeep=$(prewarm ptx-deep) && kc=$(prewarm "ptdemo-core==1.0") || true
[ -n "$kdeep" ] && [ -n "$kc" ] || fail "prewarm: $(tail -n 5 "$WORK/prewarm.log")"
"$PACTOWN" cache rm "$kc" >/dev/null && "$PACTOWN" cache gc >/dev/null || fail "cache rm, gc"
wait_until 10 sh -c "[ -z \"\$(find '$S/.uv' -maxdepth 3 -path '*archive-v*/*/ptdemo_core-1.0.dist-info')\" ]" \
    || fail "ptdemo-core 1.0, linked by no venv, was kept: a deep wheel stops the prune"
# --- a deeper wheel: the store is measured, each inode once as du counts
kdeeper=$(prewarm ptx-deeper) || true
[ -n "$kdeeper" ] && [ -d "$(site_of "$kdeeper")/ptx_deeper" ] || fail "prewarm ptx-deeper: $(tail -n 5 "$WORK/prewarm.log")"
measured_as_du() { "$PACTOWN" cache gc >/dev/null && [ "$(stat_json disk_bytes)" = "$(du -s -B1 "$S" | cut -f1)" ]; }
wait_until 10 measured_as_du || fail "disk_bytes $(stat_json disk_bytes) with a wheel 140 levels deep, du: $(du -s -B1 "$S")"

# --- the deepest: its venv is evicted, its directory removed (it used to stay, as .trash-*, at every start too)
k=$(prewarm ptx-deepest) || true
[ -n "$k" ] || fail "prewarm ptx-deepest: $(tail -n 5 "$WORK/prewarm.log")"
"$PACTOWN" cache rm "$k" >/dev/null || fail "cache rm ptx-deepest"
wait_until 10 sh -c "[ ! -e '$S/$k' ] && [ -z \"\$(ls -A '$S' | grep '^\.trash')\" ]" \
    || fail "the venv of ptx-deepest was not removed: $(ls -A "$S" | tr '\n' ' ')"

# --- pactown-build killed in the bytecode step: none of its processes is left
if [ "$(nproc)" -gt 1 ]; then
    "$PACTOWN" cache prewarm ptx-many >"$WORK/many.out" 2>&1 &
    pw=$!
    step_workers() {  # the bytecode step's pid, once it has started its workers
        local b p
        b=$(pgrep -f "pactown-build --store $S --key" | sed -n 1p) && [ -n "$b" ] || return 1
        p=$(pgrep -P "$b" -f "c # pyc_share.py" | sed -n 1p) && [ -n "$p" ] || return 1
        [ -n "$(pgrep -P "$p" | sed -n 1p)" ] && echo "$b $p"
    }
    wait_until 60 step_workers || fail "no bytecode step with workers seen: $(cat "$WORK/many.out")"
    read -r builder step < <(step_workers)
    kill -KILL "$builder"
    wait "$pw" || true
    group_left() { ps -eo pid=,pgid=,stat= | awk -v g="$step" '$2 == g && $3 !~ /^Z/ { print $1 }'; }
    group_gone() { [ -z "$(group_left)" ]; }
    if ! wait_until 5 group_gone; then
        left=$(group_left)
        EXTRA_PIDS="$EXTRA_PIDS $left"
        fail "the bytecode step's processes outlived the killed pactown-build: $(ps -o pid,ppid,stat,args -p "${left//$'\n'/,}" | cut -c1-100)"
    fi
    # and the daemon removed what it left at once, not at its next start: the
    # half venv's links would keep their wheels from the prune and count in max_bytes
    kmany=$(register ptx-many)
    [ ! -e "$S/$kmany" ] || fail "the killed build's half venv is still in the store"
    [ -z "$(ls -A "$S" | grep '^\.pyc-staging')" ] || fail "the killed build's staging is still in the store: $(ls -A "$S")"
    grep -q "removed what the killed builder left" "$WORK/cache/logs/$kmany.log" || fail "the build log does not say so"
fi

# --- with a uv cache of one's own (files copied): the same refusal
mount_stop
mount_start -o uv_cache_dir="$WORK/own-uv-cache"
refused_venvcfg "with uv_cache_dir" ptx-venvcfg ptdemo-extra

EXPECT_DAEMON='pactownfs: removing .*/\.pyc-staging-'
pass
