#!/usr/bin/env bash
# One copy of each file however many venvs hold it (issue 12): venvs built
# with uv hard-link their files from the uv cache inside the store
# (<store>/.uv), bytecode included, compiled once per wheel; tracebacks
# still name each venv's own path; sizes say what a venv holds alone and
# what the store really takes; evicting a venv never takes a file another
# venv links, and the cache's wheels that no venv links are pruned; the
# read-only store rejects writes to shared files through every path.
. "$(dirname "$0")/lib.sh"
[ -n "$UV_BIN" ] || skip "uv is not installed: venvs share files only when uv builds them"
mount_start -o min_idle_seconds=0 -o evict_interval=3600 -o wheel_keep_hours=0 -o max_entries=0 -o max_age_hours=0
S=$WORK/cache/store

prewarm() { "$PACTOWN" cache prewarm "$@" 2>>"$WORK/prewarm.log" | cut -d' ' -f1; }
k1=$(prewarm ptdemo-trace "ptdemo-core==1.0")
k2=$(prewarm ptdemo-trace ptdemo-extra)
[ -n "$k1" ] && [ -n "$k2" ] || fail "prewarm: $(cat "$WORK/prewarm.log")"
sp1=$(echo "$S/$k1"/lib/python3*/site-packages)
sp2=$(echo "$S/$k2"/lib/python3*/site-packages)
tag=$("$S/$k1/bin/python" -c 'import sys; print(sys.implementation.cache_tag)')

# --- one inode per file, the .pyc included
for f in ptdemo_trace/__init__.py "ptdemo_trace/__pycache__/__init__.$tag.pyc"; do
    [ -f "$sp1/$f" ] || fail "$k1 has no $f"
    assert_eq "$(stat -c %i "$sp2/$f")" "$(stat -c %i "$sp1/$f")" "inode of $f in both venvs"
    assert_eq "$(stat -c %h "$sp1/$f")" 3 "links of $f (the uv cache's and two venvs')"
done
[ -n "$(find "$S" -path "$S/.uv" -prune -o -type f -links +1 -print | sed -n 1p)" ] \
    || fail "find store -type f -links +1 shows no shared file"

# --- every module has its bytecode (the store is read-only: Python never writes it later)
missing=$(cd "$sp2" && find . -name '*.py' -not -path '*/__pycache__/*' | while read -r f; do
    d=$(dirname "$f"); b=$(basename "$f" .py)
    [ -f "$d/__pycache__/$b.$tag.pyc" ] || echo "$f"; done)
[ -z "$missing" ] || fail "modules of $k2 without a .pyc: $missing"
verbose=$("$S/$k2/bin/python" -v -c 'import ptdemo_trace, ptdemo_trace_data' 2>&1)
grep -q "ptdemo_trace/__pycache__/__init__.$tag.pyc matches" <<<"$verbose" \
    || fail "python does not accept the shared .pyc of ptdemo_trace"

# --- a traceback from a shared module names the venv's own path
for k in "$k1" "$k2"; do
    out=$("$S/$k/bin/python" -c 'import ptdemo_trace; ptdemo_trace.fail()' 2>&1) && fail "ptdemo_trace.fail() did not raise"
    sp=$(echo "$S/$k"/lib/python3*/site-packages)
    grep -qF "File \"$sp/ptdemo_trace/__init__.py\", line 2, in fail" <<<"$out" \
        || fail "the traceback in $k does not name its own path:
$out"
    grep -q '\.uv/' <<<"$out" && fail "the traceback in $k names the uv cache: $out"
done
out=$("$MNT/by-deps/$k2/bin/python" -c 'import ptdemo_trace; ptdemo_trace.fail()' 2>&1) && fail "through by-deps: fail() did not raise"
grep -q "RuntimeError: ptdemo_trace.fail" <<<"$out" || fail "through by-deps: $out"

# --- a set made of wheels compiled before starts no interpreter for bytecode
# (ptdemo-trace's .data/purelib module is compiled in each venv: see src/pyc_share.py)
k3=$(prewarm ptdemo-extra)
grep -q "every module's .pyc came linked from the uv cache" "$WORK/cache/logs/$k3.log" \
    || fail "the build of $k3 compiled again what was compiled: $(grep bytecode "$WORK/cache/logs/$k3.log")"

# --- builds at once that share a wheel not compiled yet: each compiles and
# publishes its bytecode while the others' uv links from the same archive
pids=()
for n in 1 2 3 4; do
    "$PACTOWN" cache prewarm "ptdemo-local; python_version >= \"2.$n\"" >"$WORK/par$n.out" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent build failed: $(cat "$WORK"/par*.out)"; done
ino=""
for n in 1 2 3 4; do
    k=$(cut -d' ' -f1 "$WORK/par$n.out" | tail -1)
    spk=$(echo "$S/$k"/lib/python3*/site-packages)
    [ -f "$spk/ptdemo_local/__pycache__/__init__.$tag.pyc" ] || fail "$k has no bytecode for ptdemo_local"
    i=$(stat -c %i "$spk/ptdemo_local/__init__.py")
    [ -z "$ino" ] || assert_eq "$i" "$ino" "inode of ptdemo_local/__init__.py in the concurrent builds"
    ino=$i
    [ -z "$(find "$spk" -name '*.pyc.*')" ] || fail "a temporary .pyc file reached $k: $(find "$spk" -name '*.pyc.*')"
done
ls -A "$S" | grep -q '^\.pyc-staging' && fail "a build left its staging directory: $(ls -A "$S")"

# --- writes to a shared file are refused through every path
if python3 -c "import os, sys; sys.exit(0 if os.statvfs('$S').f_flag & os.ST_RDONLY else 1)"; then
    arch=$(dirname "$(find "$S/.uv" -path '*archive-v*/*/ptdemo_trace/__init__.py' | sed -n 1p)")
    [ -n "$arch" ] || fail "no ptdemo_trace in the uv cache's archives"
    for p in "$sp1/ptdemo_trace/__init__.py" "$arch/__init__.py" \
             "$MNT/by-deps/$k2/lib/$(basename "$(dirname "$sp2")")/site-packages/ptdemo_trace/__init__.py"; do
        err=$( (echo 'x = 1' >> "$p") 2>&1) && fail "appending to $p succeeded"
        grep -q "Read-only file system" <<<"$err" || fail "appending to $p: $err (expected EROFS)"
    done
    err=$(ln "$sp1/ptdemo_trace/__init__.py" "$S/.uv/stolen" 2>&1) && fail "a new link into the store succeeded"
else
    say "the store is not a read-only bind mount here (not root?): write checks skipped"
fi

# --- sizes: apparent, alone, and the store's disk, each inode once (as du counts)
"$PACTOWN" cache gc >/dev/null || fail "cache gc"
disk=$(stat_json disk_bytes)
du_disk=$(du -s -B1 "$S" | cut -f1)
assert_eq "$disk" "$du_disk" "stats disk_bytes against du -s -B1 of the store"
alone_of() { "$PACTOWN" cache ls --json | python3 -c "
import json, sys
print(next(e['$2'] for e in json.load(sys.stdin) if e['key'] == '$1'))"; }
whole1=$(du -s -B1 -l "$S/$k1" | cut -f1)  # its files each counted whole
a1=$(alone_of "$k1" alone_bytes)
[ "$a1" -gt 0 ] && [ "$a1" -lt "$whole1" ] || fail "$k1 holds $a1 bytes alone of $whole1: expected 0 < alone < whole"
[ "$(alone_of "$k1" size)" -gt 0 ] || fail "$k1 has no apparent size"
"$PACTOWN" cache stats | grep -q "^disk .*shared files" || fail "cache stats shows no disk line: $("$PACTOWN" cache stats)"

# --- eviction: k1 goes, k2 keeps every file; the wheel only k1 held is pruned
core_archive() { find "$S/.uv" -maxdepth 3 -path '*archive-v*/*/ptdemo_core-1.0.dist-info' | sed -n 1p; }
[ -n "$(core_archive)" ] || fail "no ptdemo-core 1.0 in the uv cache"
"$PACTOWN" cache rm "$k1" >/dev/null || fail "cache rm $k1"
"$PACTOWN" cache gc >/dev/null || fail "cache gc after rm"
wait_until 10 sh -c "[ -z \"\$(find '$S/.uv' -maxdepth 3 -path '*archive-v*/*/ptdemo_core-1.0.dist-info')\" ]" \
    || fail "the wheel no venv links any more (ptdemo-core 1.0) was not pruned"
assert_eq "$(stat -c %h "$sp2/ptdemo_trace/__init__.py")" 2 "links of a file k2 still holds (and the cache)"
"$S/$k2/bin/python" -c 'import ptdemo_trace, ptdemo_extra' || fail "$k2 broke when $k1 was evicted"
# measured again once the prune (in the daemon's eviction thread) is over
measured_as_du() { "$PACTOWN" cache gc >/dev/null && [ "$(stat_json disk_bytes)" = "$(du -s -B1 "$S" | cut -f1)" ]; }
wait_until 10 measured_as_du || fail "disk_bytes after the eviction: $(stat_json disk_bytes), du: $(du -s -B1 "$S")"
disk_after=$(stat_json disk_bytes)
[ "$disk_after" -lt "$disk" ] || fail "the store's disk did not shrink with the eviction ($disk -> $disk_after)"
# and uv, whose cache lost a wheel, builds it again
[ "$(prewarm ptdemo-trace "ptdemo-core==1.0")" = "$k1" ] || fail "rebuilding $k1 after the prune: $(tail -5 "$WORK/prewarm.log")"
[ -f "$S/$k1/lib/$(basename "$(dirname "$sp1")")/site-packages/ptdemo_core/__init__.py" ] || fail "$k1 rebuilt without ptdemo_core"

mount_stop
ls "$S" | grep -q '^\.trash' && fail "a renamed-aside venv was left in the store"

# --- uv_cache_dir: a uv cache of one's own, outside the store: copies, and bytecode per venv
mount_start -o uv_cache_dir="$WORK/own-uv-cache"
k4=$(prewarm "ptdemo-core==2.0")
[ -n "$k4" ] || fail "prewarm with uv_cache_dir: $(tail -5 "$WORK/prewarm.log")"
[ -d "$WORK/own-uv-cache" ] || fail "uv did not use uv_cache_dir"
[ -z "$(find "$S/$k4" -type f -links +1)" ] || fail "a venv built with uv_cache_dir shares files"
sp4=$(echo "$S/$k4"/lib/python3*/site-packages)
[ -f "$sp4/ptdemo_core/__pycache__/__init__.$tag.pyc" ] || fail "a venv built with uv_cache_dir has no bytecode"
pass
