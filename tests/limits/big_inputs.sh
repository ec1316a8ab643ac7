#!/usr/bin/env bash
# Big inputs get a correct result or a clear error, with the documented exit
# code (3 for bad input), in bounded memory and time:
#   a 100 MiB README that is one huge markpact:file block; a 100 MiB README of
#   plain Markdown with small deps/run blocks at its end; a README over the
#   128 MiB limit; 10,000 requirement lines (pactown hash -r: no build);
#   markpact:file paths of 4096 bytes, 4097 bytes, a 256-byte component and
#   2048 levels; requirement lines of 4096 and 5000 bytes, a continued line
#   over the limit, markers nested 32/33/4000 deep, a -r file over 64 MiB.
# Figures (max RSS, wall time) are printed as FIGURE lines.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib_limits.sh"
ensure_time

MIB=$((1 << 20))
RSS_LIMIT_KB=${PT_RSS_LIMIT_KB:-$((200 * 1024))}
mount_start

# a README of SIZE bytes: mode "file" = deps, run, then one markpact:file block
# (data/big.txt) filling the rest; mode "text" = plain Markdown first, then
# small deps/run blocks. Prints the sha256 of the big file's body ("file").
gen_readme() {
    python3 - "$@" <<'PY'
import hashlib, sys
out, mode, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
line = (b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" * 2)[:99] + b"\n"
head_deps = b"```text markpact:deps python\nptdemo-core==1.0\n```\n"
run = (b"```bash markpact:run\n"
       b"python -c 'import ptdemo_core' && wc -c < data/big.txt > size.txt\n"
       b"```\n")
with open(out, "wb") as f:
    if mode == "file":
        head = b"# big file\n" + head_deps + run + b"```text markpact:file path=data/big.txt\n"
        tail = b"```\n"
        body_len = size - len(head) - len(tail)
        n, rest = divmod(body_len, len(line))
        h = hashlib.sha256()
        f.write(head)
        chunk = line * 10000
        for _ in range(n // 10000):
            f.write(chunk); h.update(chunk)
        part = line * (n % 10000)
        f.write(part); h.update(part)
        last = b"x" * (rest - 1) + b"\n" if rest else b""
        f.write(last); h.update(last)
        f.write(tail)
        print(h.hexdigest())
    else:
        tail = b"\n# how to run\n" + head_deps + run.replace(b"wc -c < data/big.txt > size.txt", b"true")
        text = b"Plain *Markdown*, no fences here: " + line
        n, rest = divmod(size - len(tail), len(text))
        chunk = text * 10000
        for _ in range(n // 10000):
            f.write(chunk)
        f.write(text * (n % 10000))
        f.write(b"#" * (rest - 1) + b"\n" if rest else b"")
        f.write(tail)
PY
}

# ---- 1. a 100 MiB README that is one markpact:file block ----
sha=$(gen_readme "$WORK/bigfile.md" file $((100 * MIB)))
assert_eq "$(stat -c %s "$WORK/bigfile.md")" $((100 * MIB)) "size of the generated README"
measure "$WORK/run1.out" "$PACTOWN" run "$WORK/bigfile.md" --service-id bigfile --skip-health-check
[ "$M_RC" = 0 ] || fail "pactown run of a 100 MiB file block: exit $M_RC: $(tail -n 20 "$WORK/run1.out")"
body=$WORK/sandboxes/bigfile/data/big.txt
assert_eq "$(sha256sum <"$body" | cut -d' ' -f1)" "$sha" "sha256 of the 100 MiB file written to the sandbox"
assert_eq "$(tr -d ' \n' <"$WORK/sandboxes/bigfile/size.txt")" "$(stat -c %s "$body")" "size seen by the service"
figure "100 MiB README, one file block: pactown run exit 0, max RSS $((M_RSS_KB / 1024)) MiB, ${M_SECS} s (includes the first build)"
# the README text and the block's body are both in memory once: about 2x the README
[ "$M_RSS_KB" -le $((RSS_LIMIT_KB + 40 * 1024)) ] \
    || fail "max RSS $M_RSS_KB KiB for a 100 MiB file block (limit $((RSS_LIMIT_KB + 40 * 1024)) KiB)"
rm -rf "$WORK/sandboxes/bigfile" "$WORK/bigfile.md"

# ---- 2. 100 MiB of plain Markdown, small deps/run at the end ----
gen_readme "$WORK/bigtext.md" text $((100 * MIB)) >/dev/null
lines=$(wc -l <"$WORK/bigtext.md")
measure "$WORK/run2.out" "$PACTOWN" run "$WORK/bigtext.md" --service-id bigtext --skip-health-check
[ "$M_RC" = 0 ] || fail "pactown run of 100 MiB of Markdown: exit $M_RC: $(tail -n 20 "$WORK/run2.out")"
grep -q "cache hit" "$WORK/run2.out" || fail "the deps at the end of 100 MiB of text were not found: $(cat "$WORK/run2.out")"
figure "100 MiB Markdown ($lines lines), deps/run at the end: exit 0, max RSS $((M_RSS_KB / 1024)) MiB, ${M_SECS} s"
[ "$M_RSS_KB" -le "$RSS_LIMIT_KB" ] || fail "max RSS $M_RSS_KB KiB for 100 MiB of Markdown (limit $RSS_LIMIT_KB KiB)"
# the same text with an error in its last block names the right line
sed -i '$ d' "$WORK/bigtext.md"   # drop the run block's closing fence
measure "$WORK/run2b.out" "$PACTOWN" run "$WORK/bigtext.md" --service-id bigtext --skip-health-check
assert_eq "$M_RC" 3 "exit code for an unclosed block after 100 MiB of text"
grep -qE "bigtext.md:$((lines - 2)): markpact:run block opened here is never closed" "$WORK/run2b.out" \
    || fail "unclosed block after 100 MiB: $(cat "$WORK/run2b.out")"
figure "same README with its last fence missing: exit 3 ($(head -n 1 "$WORK/run2b.out" | sed 's,.*/,,')), max RSS $((M_RSS_KB / 1024)) MiB, ${M_SECS} s"
rm -f "$WORK/bigtext.md"

# ---- 3. over the README limit (128 MiB): exit 3 (read up to the limit, then refused) ----
truncate -s $((128 * MIB + 1)) "$WORK/huge.md"
measure "$WORK/run3.out" "$PACTOWN" run "$WORK/huge.md" --service-id huge
assert_eq "$M_RC" 3 "exit code for a README over 128 MiB"
grep -q "huge.md: larger than 128 MiB" "$WORK/run3.out" || fail "README over the limit: $(cat "$WORK/run3.out")"
figure "128 MiB + 1 byte README: exit 3 (larger than 128 MiB), max RSS $((M_RSS_KB / 1024)) MiB, ${M_SECS} s"
rm -f "$WORK/huge.md"

# ---- 4. 10,000 requirement lines: pactown hash -r (no build) ----
seq 1 10000 | sed 's/^/ptdemo-pkg-/' >"$WORK/reqs10k.txt"
measure "$WORK/hash.out" "$PACTOWN" hash -r "$WORK/reqs10k.txt"
[ "$M_RC" = 0 ] || fail "hash -r of 10,000 lines: exit $M_RC: $(tail -n 5 "$WORK/hash.out")"
grep -qE '^key [0-9a-f]{32}$' "$WORK/hash.out" || fail "hash -r of 10,000 lines printed no key"
assert_eq "$(grep -c '^ptdemo-pkg-[0-9]*$' "$WORK/hash.out")" 10000 "canonical lines for 10,000 requirements"
key10k=$(sed -n 's/^key //p' "$WORK/hash.out")
figure "10,000 requirement lines, hash -r: exit 0, max RSS $((M_RSS_KB / 1024)) MiB, ${M_SECS} s"
[ "$M_RSS_KB" -le "$RSS_LIMIT_KB" ] || fail "max RSS $M_RSS_KB KiB for 10,000 requirements"
# the same set shuffled, with case and separators changed: the same key
seq 1 10000 | shuf | sed 's/^/PTDemo_Pkg./' >"$WORK/reqs10k-b.txt"
assert_eq "$("$PACTOWN" hash -r "$WORK/reqs10k-b.txt" | sed -n 's/^key //p')" "$key10k" "key of the shuffled set"
# --register stores it (a 170 KB canonical text in the index)
measure "$WORK/hashr.out" "$PACTOWN" hash --register -r "$WORK/reqs10k.txt"
[ "$M_RC" = 0 ] || fail "hash --register of 10,000 lines: $(tail -n 5 "$WORK/hashr.out")"
figure "10,000 requirement lines, hash --register: exit 0, max RSS $((M_RSS_KB / 1024)) MiB, ${M_SECS} s"
assert_eq "$("$PACTOWN" cache show "$key10k" | grep -c '^ptdemo-pkg-')" 10000 "requirements in cache show"
# a lookup builds it: these packages do not exist, so EIO, and the log has the whole set
t0=$(date +%s%N)
out=$(stat "$MNT/by-deps/$key10k/bin/python" 2>&1) && fail "10,000 nonexistent packages installed"
case "$out" in *"Input/output error"*) ;; *) fail "expected EIO for 10,000 unknown packages, got: $out" ;; esac
figure "10,000 unknown packages, lookup: EIO in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
assert_eq "$(grep -c '^ptdemo-pkg-[0-9]*$' "$WORK/cache/logs/$key10k.log")" 10000 "requirement lines in the build log"
grep -q "not found" "$WORK/cache/logs/$key10k.log" || fail "the build log does not say what is missing"
# an error on the last of 10,000 lines names it
{ seq 1 9999 | sed 's/^/ptdemo-pkg-/'; echo 'ptdemo-pkg-x @ file:///tmp/x.whl'; } >"$WORK/reqs10k-bad.txt"
expect_exit 3 "reqs10k-bad.txt:10000: .*direct reference: local paths" "$PACTOWN" hash -r "$WORK/reqs10k-bad.txt"

# ---- 5. markpact:file paths at the limits ----
# path_readme FILE PATH: a README whose file block (line 1) has PATH
path_readme() {
    printf '```text markpact:file path=%s\nx\n```\n```text markpact:deps python\nptdemo-core==1.0\n```\n```bash markpact:run\ntrue\n```\n' "$2" >"$1"
}
comp() { head -c "$1" /dev/zero | tr '\0' "$2"; }
# 4096 bytes exactly (17 components, none over 255): accepted, written beneath the sandbox
p4096=$(for i in $(seq 16); do printf '%s/' "$(comp 250 "$(printf "\\x$(printf %x $((96 + i)))")")"; done; comp 80 z)
assert_eq "${#p4096}" 4096 "length of the 4096-byte path"
path_readme "$WORK/p4096.md" "$p4096"
expect_exit 0 "" "$PACTOWN" run "$WORK/p4096.md" --service-id p4096 --skip-health-check
python3 - "$WORK/sandboxes/p4096" "$p4096" <<'PY' || fail "the file at the 4096-byte path is missing or wrong"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
parts = sys.argv[2].split("/")
for p in parts[:-1]:
    nfd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd); os.close(fd); fd = nfd
f = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
assert os.read(f, 10) == b"x\n"
PY
figure "markpact:file path of 4096 bytes (17 components): written, exit 0"
# 4097 bytes: exit 3, the line and the reason
path_readme "$WORK/p4097.md" "${p4096}z"
expect_exit 3 'p4097.md:1: markpact:file path ".{60}\.\.\.": path is longer than 4096 bytes' \
    "$PACTOWN" run "$WORK/p4097.md" --service-id p4097
figure "path of 4097 bytes: exit 3 ($(sed 's,.*/,,' "$WORK/out" | cut -c1-60)...: path is longer than 4096 bytes)"
# a 256-byte component: exit 3, names the path and the component limit
path_readme "$WORK/c256.md" "app/$(comp 256 n)/x.py"
expect_exit 3 'c256.md:1: markpact:file path "app/n{56}\.\.\.": a path component is longer than 255 bytes' \
    "$PACTOWN" run "$WORK/c256.md" --service-id c256
# a 255-byte component is fine
path_readme "$WORK/c255.md" "app/$(comp 255 n)"
expect_exit 0 "" "$PACTOWN" run "$WORK/c255.md" --service-id c255 --skip-health-check
[ "$(cat "$WORK/sandboxes/c255/app/$(comp 255 n)")" = x ] || fail "the file with a 255-byte name"
# 4095 bytes as 2048 levels of one-letter directories: written (or a clear error)
deep=$(for _ in $(seq 2047); do printf 'd/'; done; printf 'f')
assert_eq "${#deep}" 4095 "length of the deep path"
path_readme "$WORK/deep.md" "$deep"
measure "$WORK/deep.out" "$PACTOWN" run "$WORK/deep.md" --service-id deep --skip-health-check
if [ "$M_RC" = 0 ]; then
    python3 - "$WORK/sandboxes/deep" <<'PY' || fail "the file 2048 levels deep is missing"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
for _ in range(2047):
    nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd); os.close(fd); fd = nfd
assert os.read(os.open("f", os.O_RDONLY, dir_fd=fd), 10) == b"x\n"
PY
    figure "path of 4095 bytes, 2048 levels: written, exit 0, ${M_SECS} s"
else
    grep -qE "deep.md:1: .*d/d/d" "$WORK/deep.out" || fail "2048 levels: exit $M_RC without a clear error: $(cat "$WORK/deep.out")"
    figure "path of 4095 bytes, 2048 levels: exit $M_RC ($(head -c 200 "$WORK/deep.out"))"
fi
rm -rf "$WORK/sandboxes/deep" "$WORK/sandboxes/p4096"

# ---- 6. requirement lines at the limits ----
long4096="a$(comp 4095 b)"
printf 'ptdemo-core\n%s\n' "$long4096" >"$WORK/r4096.txt"
expect_exit 0 "^key [0-9a-f]{32}$" "$PACTOWN" hash -r "$WORK/r4096.txt"
grep -qx "$long4096" "$WORK/out" || fail "the 4096-byte requirement is not in the canonical set"
printf 'ptdemo-core\n# a comment\n%s\n' "a$(comp 4999 b)" >"$WORK/r5000.txt"
expect_exit 3 "r5000.txt:3: 'ab{79}\.\.\.': line is longer than 4096 bytes" "$PACTOWN" hash -r "$WORK/r5000.txt"
figure "requirement line of 5000 bytes (hash -r): exit 3 ($(sed 's,.*/,,' "$WORK/out" | cut -c1-40)...: line is longer than 4096 bytes)"
expect_exit 3 "argument: 'ab{79}\.\.\.': line is longer than 4096 bytes" "$PACTOWN" hash "a$(comp 4999 b)"
# in a README's deps block: the README line
printf '# t\n\n```text markpact:deps python\nptdemo-core\n%s\n```\n```bash markpact:run\ntrue\n```\n' "a$(comp 4999 b)" >"$WORK/r5000.md"
expect_exit 3 "r5000.md:5: 'ab{79}\.\.\.': line is longer than 4096 bytes" "$PACTOWN" run "$WORK/r5000.md" --service-id r5000
# continued lines joined over the limit: the first line of the continuation
{ echo ptdemo-core; for _ in $(seq 3); do printf '%s \\\n' "$(comp 2000 c)"; done; echo 'd'; } >"$WORK/rcont.txt"
expect_exit 3 "rcont.txt:2: 'c{80}\.\.\.': continued line is longer than 4096 bytes" "$PACTOWN" hash -r "$WORK/rcont.txt"
# markers nested 32 deep are fine, 33 and 4,000 '(' are refused (no deep recursion)
nest() { printf '(%.0s' $(seq "$1"); printf 'os_name == "posix"'; printf ')%.0s' $(seq "$1"); }
expect_exit 0 "^key [0-9a-f]{32}$" "$PACTOWN" hash "pkg; $(nest 32)"
expect_exit 3 "at most 32" "$PACTOWN" hash "pkg; $(nest 33)"
expect_exit 3 "at most 32" "$PACTOWN" hash "pkg; $(printf '(%.0s' $(seq 4000))"
# a requirements file over the 64 MiB limit of -r
truncate -s $((64 * MIB + 1)) "$WORK/huge.txt"
expect_exit 3 "huge.txt: File too large" "$PACTOWN" hash -r "$WORK/huge.txt"
rm -f "$WORK/huge.txt"

daemon_alive
pass
