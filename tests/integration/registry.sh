#!/usr/bin/env bash
# Many hosts, one build (issue 13): host A builds a venv and pushes it to a
# real OCI registry (Debian's docker-registry) in the background; host B —
# a second daemon with a cache of its own at the same store path, in a
# mount namespace of its own — pulls it on its first lookup without running
# the installer, and serves it; skopeo (a client nobody here wrote) reads
# the artifact's manifest; `pactown cache ls --remote|push|pull` work.
# Fault cases, each ending in a local build and a log line naming the
# cause: the registry stopped, a blob corrupted on the registry's disk, a
# manifest pointing at a missing blob, a hand-made hostile archive, an
# artifact for another store. (Credentials: registry_auth.sh.)
. "$(dirname "$0")/lib.sh"
[ -n "$UV_BIN" ] || skip "uv is not installed"
command -v skopeo >/dev/null || skip "skopeo is not installed (tools/setup installs it)"
command -v unshare >/dev/null && command -v nsenter >/dev/null || skip "no unshare/nsenter"
registry_start
EXTRA_DAEMON_LOGS=$B_LOG
# host B pushes what it built after a failed pull: while the registry is stopped, that fails
EXPECT_DAEMON='pushing [0-9a-f]{32} to the registry failed'

# host B's installer: uv, with every call written down
cat > "$WORK/uv-b" <<EOF
#!/bin/sh
echo "\$*" >> "$WORK/uv-b.calls"
exec "$UV_BIN" "\$@"
EOF
chmod +x "$WORK/uv-b"

mount_start -o registry="$REG_URL" -o registry_timeout=3
a_prewarm() { "$PACTOWN" cache prewarm "$@" 2>>"$WORK/prewarm.log" | cut -d' ' -f1; }
b_prewarm() { hostb "$PACTOWN" cache prewarm "$@" 2>>"$WORK/prewarm.log" | cut -d' ' -f1; }
a_registry() { python3 -c "import json; print(json.load(open('$MNT/stats'))['registry']['$1'])"; }
b_registry() { hostb cat "$WORK/mntb/stats" | python3 -c "import json, sys; print(json.load(sys.stdin)['registry']['$1'])"; }
BLOG=$WORK/hostb/cache/logs

# --- host A builds, and pushes in the background
k=$(a_prewarm ptdemo-trace "ptdemo-core==1.0")
[ -n "$k" ] || fail "host A's prewarm: $(cat "$WORK/prewarm.log")"
wait_until 30 sh -c "[ \"\$(python3 -c \"import json; print(json.load(open('$MNT/stats'))['registry']['pushed'])\")\" = 1 ]" \
    || fail "host A did not push $k: $(tail -5 "$WORK/cache/logs/$k.log")"
grep -q "pactown-registry: pushed $k to 127.0.0.1:$REG_PORT/pt/venvs" "$WORK/cache/logs/$k.log" \
    || fail "the build log does not say it was pushed: $(tail -5 "$WORK/cache/logs/$k.log")"
grep -q "ready (built)" "$WORK/cache/logs/$k.log" || fail "the build log does not say it was built here"

# --- skopeo reads the artifact's manifest and config
man=$(skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$REG_PORT/pt/venvs:$k") \
    || fail "skopeo inspect --raw failed"
python3 - "$man" <<'PY' || fail "the manifest skopeo read: $man"
import json, sys
m = json.loads(sys.argv[1])
assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json", m
assert m["artifactType"] == "application/vnd.pactown.venv.v1", m
assert m["config"]["mediaType"] == "application/vnd.pactown.venv.config.v1+json", m
titles = [l["annotations"]["org.opencontainers.image.title"] for l in m["layers"]]
assert titles == ["ptdemo_core-1.0", "ptdemo_trace-1.0", "venv"], titles
assert all(l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd" for l in m["layers"])
PY
cfg=$(skopeo inspect --config --raw --tls-verify=false "docker://127.0.0.1:$REG_PORT/pt/venvs:$k") \
    || fail "skopeo inspect --config failed"
python3 - "$cfg" "$k" "$WORK/cache/store" <<'PY' || fail "the config skopeo read: $cfg"
import json, sys
c = json.loads(sys.argv[1])
assert c["key"] == sys.argv[2] and c["store"] == sys.argv[3], c
assert c["canonical"].startswith("pactown-venv/1\npython cpython "), c
assert c["interpreter"]["path"].startswith("/usr/bin/python3"), c
assert c["build"]["files"] > 0, c
PY
ls_remote=$("$PACTOWN" cache ls --remote --set registry="$REG_URL") || fail "cache ls --remote failed"
grep -q "^$k .*ptdemo-core==1.0 ptdemo-trace" <<<"$ls_remote" || fail "cache ls --remote: $ls_remote"

# --- host B pulls on its first lookup, without running uv, and serves it
hostb_start -o registry="$REG_URL" -o registry_timeout=3 -o uv="$WORK/uv-b"
: > "$WORK/uv-b.calls"
kb=$(b_prewarm ptdemo-trace "ptdemo-core==1.0")
assert_eq "$kb" "$k" "host B's key of the same set"
grep -q "pactown-build: pulled $k from 127.0.0.1:$REG_PORT/pt/venvs" "$BLOG/$k.log" \
    || fail "host B's build log does not say it pulled: $(cat "$BLOG/$k.log")"
grep -q "ready (pulled)" "$BLOG/$k.log" || fail "host B's log: $(tail -3 "$BLOG/$k.log")"
# progress: a line per layer (three: ptdemo_core, ptdemo_trace, venv)
assert_eq "$(grep -c '^pactown-build: layer [1-3]/3 ' "$BLOG/$k.log")" 3 "progress lines of the pull"
grep -q "pip install" "$WORK/uv-b.calls" && fail "host B ran the installer: $(cat "$WORK/uv-b.calls")"
assert_eq "$(b_registry pulled)" 1 "host B's stats: pulled"
assert_eq "$(b_registry pushed)" 0 "host B's stats: pushed (a pulled venv is not pushed again)"
out=$(hostb "$WORK/mntb/by-deps/$k/bin/python" -c 'import ptdemo_trace, ptdemo_core; print("ok")' 2>&1)
assert_eq "$out" ok "importing the pulled venv's modules on host B"
# its bytecode is valid for its sources as unpacked (the store is read-only: no second chance)
tag=$(hostb "$WORK/mntb/by-deps/$k/bin/python" -c 'import sys; print(sys.implementation.cache_tag)')
verbose=$(hostb "$WORK/mntb/by-deps/$k/bin/python" -v -c 'import ptdemo_trace' 2>&1)
grep -q "ptdemo_trace/__pycache__/__init__.$tag.pyc matches" <<<"$verbose" \
    || fail "python does not accept the pulled .pyc: $(grep ptdemo_trace <<<"$verbose" | head -5)"
[ -w "$WORK/hostb/cache/store/$k/pyvenv.cfg" ] && [ "$(stat -c %a "$WORK/hostb/cache/store/$k/pyvenv.cfg")" != 444 ] \
    && fail "the pulled venv is not sealed read-only"
hostb "$PACTOWN" cache ls --json | python3 -c "
import json, sys
e = [x for x in json.load(sys.stdin) if x['key'] == '$k'][0]
assert e['origin'] == 'pulled', e" || fail "host B's cache ls does not say pulled"
# the same files as host A's venv, byte for byte (the bytecode's header aside: its mtime is the source's)
diff <(cd "$WORK/cache/store/$k" && find . \( -type f -o -type l \) -not -name '*.pyc' | sort) \
     <(cd "$WORK/hostb/cache/store/$k" && find . \( -type f -o -type l \) -not -name '*.pyc' | sort) \
    || fail "host B's venv does not hold host A's paths"
(cd "$WORK/cache/store/$k" && find . -type f -not -name '*.pyc' -exec sha256sum {} + | sort) > "$WORK/a.sums"
(cd "$WORK/hostb/cache/store/$k" && find . -type f -not -name '*.pyc' -exec sha256sum {} + | sort) > "$WORK/b.sums"
diff "$WORK/a.sums" "$WORK/b.sums" || fail "host B's files differ from host A's"

# --- pactown cache pull: a key host B never saw, registered from the registry's copy
k2=$(a_prewarm ptdemo-extra)
wait_until 30 sh -c "[ \"\$(python3 -c \"import json; print(json.load(open('$MNT/stats'))['registry']['pushed'])\")\" = 2 ]" \
    || fail "host A did not push $k2"
out=$(hostb "$PACTOWN" cache pull "$k2" --set registry="$REG_URL" 2>&1) || fail "cache pull $k2: $out"
grep -q "^$k2 pulled in" <<<"$out" || fail "cache pull: $out"
hostb "$PACTOWN" cache show "$k2" | grep -q "ptdemo-extra" || fail "cache show after pull: $(hostb "$PACTOWN" cache show "$k2")"
out=$(hostb "$PACTOWN" cache pull 0123456789abcdef0123456789abcdef --set registry="$REG_URL" 2>&1) \
    && fail "cache pull of a key that is nowhere succeeded: $out"
grep -q "not in the registry" <<<"$out" || fail "cache pull of an unknown key: $out"
# cache push by hand: everything is there already, nothing is sent again
out=$("$PACTOWN" cache push "$k" --set registry="$REG_URL" 2>&1) || fail "cache push: $out"
grep -q "0 sent (0 bytes)" <<<"$out" || fail "cache push sent blobs the registry had: $out"

# --- fault cases: each ends in a local build on host B, its log naming the cause
# fault_case NAME SET...: host A builds and pushes SET, then break_NAME
# damages the registry, then host B's first lookup must build it here
fault_case() {
    local name=$1; shift
    local before kf
    before=$(a_registry pushed)
    kf=$(a_prewarm "$@")
    [ -n "$kf" ] || fail "$name: host A's prewarm: $(tail -3 "$WORK/prewarm.log")"
    wait_until 30 sh -c "[ \"\$(python3 -c \"import json; print(json.load(open('$MNT/stats'))['registry']['pushed'])\")\" -gt $before ]" \
        || fail "$name: host A did not push $kf"
    "break_$name" "$kf"
    : > "$WORK/uv-b.calls"
    local kb2
    kb2=$(b_prewarm "$@")
    assert_eq "$kb2" "$kf" "$name: host B's key"
    grep -q "pip install" "$WORK/uv-b.calls" || fail "$name: host B did not build it here: $(cat "$BLOG/$kf.log")"
    grep -q "pull FAILED: .*$CAUSE" "$BLOG/$kf.log" \
        || fail "$name: host B's build log does not name the cause ($CAUSE): $(grep -i registry "$BLOG/$kf.log")"
    grep -q "ready (built here: the pull failed)" "$BLOG/$kf.log" || fail "$name: $(tail -2 "$BLOG/$kf.log")"
    hostb "$WORK/mntb/by-deps/$kf/bin/python" -c 'import sys' || fail "$name: the venv built here does not run"
    [ -z "$(ls -A "$WORK/hostb/cache/store" | grep -v -e '^\.uv$' -e '^[0-9a-f]\{32\}$')" ] \
        || fail "$name: leftovers in host B's store: $(ls -A "$WORK/hostb/cache/store")"
    say "$name: built here, and said why"
}
blob_path() { echo "$WORK/registry/docker/registry/v2/blobs/sha256/${1:7:2}/${1:7}/data"; }
layer_digest() { # KEY TITLE: the digest of the layer of that title
    curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$REG_PORT/v2/pt/venvs/manifests/$1" \
        | python3 -c "import json,sys; print([l['digest'] for l in json.load(sys.stdin)['layers'] if l['annotations']['org.opencontainers.image.title'].startswith('$2')][0])"
}

# a blob corrupted on the registry's disk (same size, other bytes)
break_corrupt() {
    local f
    f=$(blob_path "$(layer_digest "$1" venv)")
    [ -f "$f" ] || fail "corrupt: no blob file $f"
    python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2] ^= 0xff; open(p,'wb').write(b)" "$f"
}
CAUSE="its content's digest is sha256:" fault_case corrupt "ptdemo-core==2.0"

# a manifest pointing at a missing blob
break_missing() { rm -rf "$(dirname "$(blob_path "$(layer_digest "$1" ptdemo_tools)")")"; }
CAUSE="HTTP 404" fault_case missing ptdemo-tools

# a hand-made hostile archive: the venv layer replaced by one that writes outside the venv
break_hostile() {
    python3 - "$1" "$REG_PORT" "$WORK" <<'PY'
import hashlib, io, json, subprocess, sys, tarfile, urllib.request
key, port, work = sys.argv[1], sys.argv[2], sys.argv[3]
base = "http://127.0.0.1:%s/v2/pt/venvs" % port
req = urllib.request.Request(base + "/manifests/" + key, headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
man = json.load(urllib.request.urlopen(req))
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    data = b"owned\n"
    ti = tarfile.TarInfo("../../../../../../../../../%s/escaped" % work.strip("/"))
    ti.size = len(data)
    t.addfile(ti, io.BytesIO(data))
blob = subprocess.run(["zstd", "-q", "-c"], input=buf.getvalue(), stdout=subprocess.PIPE, check=True).stdout
digest = "sha256:" + hashlib.sha256(blob).hexdigest()
up = urllib.request.urlopen(urllib.request.Request(base + "/blobs/uploads/", method="POST", data=b""))
loc = up.headers["Location"]
urllib.request.urlopen(urllib.request.Request(loc + ("&" if "?" in loc else "?") + "digest=" + digest, method="PUT", data=blob,
                                              headers={"Content-Type": "application/octet-stream"}))
man["layers"][-1].update(digest=digest, size=len(blob))
urllib.request.urlopen(urllib.request.Request(base + "/manifests/" + key, method="PUT", data=json.dumps(man).encode(),
                                              headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))
PY
}
CAUSE="an absolute path, a '..' or a control byte: refused" fault_case hostile ptdemo-trace ptdemo-extra
[ -e "$WORK/escaped" ] && fail "the hostile archive wrote outside the venv"

# the registry stopped
break_stopped() { registry_stop; }
CAUSE="Couldn't connect\|Connection refused\|Failed to connect" fault_case stopped ptdemo-core==1.0 ptdemo-extra
registry_start

# an artifact for another store: host C keeps its cache elsewhere
hostb_stop
mkdir -p "$WORK/hostc" "$WORK/mntc"
# host C: a plain daemon (no namespace) with another cache_dir, hence another store path
"$PACTOWNFS" -f ${PACTOWN_FUSE_OPTS:-} "$WORK/mntc" -o cache_dir="$WORK/hostc/cache" -o registry="$REG_URL" \
    -o registry_push=no >>"$WORK/daemon-c.log" 2>&1 &
C_PID=$!
EXTRA_PIDS="$EXTRA_PIDS $C_PID"
EXTRA_DAEMON_LOGS="$B_LOG $WORK/daemon-c.log"
wait_until 20 grep -q "ready at $WORK/mntc" "$WORK/daemon-c.log" || fail "host C did not mount: $(tail -3 "$WORK/daemon-c.log")"
out=$(PACTOWN_MOUNTPOINT=$WORK/mntc PACTOWN_CACHE_DIR=$WORK/hostc/cache "$PACTOWN" cache prewarm ptdemo-trace "ptdemo-core==1.0" 2>&1) \
    || fail "host C's prewarm: $out"
grep -q "pull FAILED: .*was built in the store \"$WORK/cache/store\", this host's is $WORK/hostc/cache/store" \
    "$WORK/hostc/cache/logs/$k.log" || fail "host C's log does not say the store differs: $(grep -i registry "$WORK/hostc/cache/logs/$k.log")"
grep -q "ready (built here: the pull failed)" "$WORK/hostc/cache/logs/$k.log" || fail "host C did not build it here"
say "another store: built here, and said why"
fusermount3 -u "$WORK/mntc"
wait_until 10 proc_gone "$C_PID" || fail "host C did not stop"

pass
