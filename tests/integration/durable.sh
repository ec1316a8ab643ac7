#!/usr/bin/env bash
# A venv is answered before its files reach the disk: the daemon commits it
# ready but "unsynced", answers, then syncs the store (syncfs) and clears the
# flag. At start-up an entry still unsynced is kept when the machine did not
# restart since (the page cache holds its files: the daemon syncs it then)
# and built again when it did (its files may be lost). The state between the
# answer and the sync lasts milliseconds: the test writes it into the index
# with lmdb-utils (mdb_dump, mdb_load) while no daemon runs.
. "$(dirname "$0")/lib.sh"
command -v mdb_dump >/dev/null && command -v mdb_load >/dev/null || skip "mdb_dump/mdb_load (lmdb-utils) not installed"

# field KEY NAME: a field of `cache show KEY --json`
field() { "$PACTOWN" cache show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"; }
synced() { field "$1" synced; }
is_synced() { [ "$(synced "$1")" = True ]; }

# set_unsynced KEY [BOOT_ID]: the entry's unsynced flag (struct pt_entry, byte 128: a _Static_assert in
# src/index.c keeps the offset) set to 1, and the boot the last daemon ran in set to BOOT_ID
set_unsynced() {
    mdb_dump -s entry "$WORK/cache/index" >"$WORK/entry.dump" || fail "mdb_dump of the entries"
    python3 - "$1" "$WORK/entry.dump" <<'PY' || fail "editing the entry"
import sys
key, path = sys.argv[1], sys.argv[2]
lines = [ln for ln in open(path).read().split("\n") if not ln.startswith("db_pagesize=")]
want = " " + key.encode().hex()
i = lines.index(want)  # the key's line; its value is the next one
v = bytearray.fromhex(lines[i + 1].strip())
assert len(v) >= 132, len(v)
v[128:132] = (1).to_bytes(4, "little")
lines[i + 1] = " " + v.hex()
open(path, "w").write("\n".join(lines))
PY
    mdb_load -s entry -f "$WORK/entry.dump" "$WORK/cache/index" || fail "mdb_load of the entries"
    if [ -n "${2:-}" ]; then
        printf 'VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n %s\n %s\nDATA=END\n' \
            "$(printf boot_id | od -An -tx1 | tr -d ' \n')" "$(printf '%s' "$2" | od -An -tx1 | tr -d ' \n')" \
            >"$WORK/meta.dump"
        mdb_load -s meta -f "$WORK/meta.dump" "$WORK/cache/index" || fail "mdb_load of the boot id"
    fi
}

mount_start
key=$(register ptdemo-app)
"$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app' || fail "the first build"
grep -q "pactown-build: sealed (read-only)" "$WORK/cache/logs/$key.log" || fail "the builder did not seal the venv"
wait_until 10 is_synced "$key" || fail "the venv was not synced after the answer: $("$PACTOWN" cache show "$key")"
mount_stop

# the daemon stopped between its answer and its sync; the machine did not restart
set_unsynced "$key"
assert_eq "$(synced "$key")" False "synced, with the flag set"
"$PACTOWN" cache show "$key" | grep -q "not yet synced to disk" || fail "cache show does not say it is unsynced"
mount_start
assert_eq "$(synced "$key")" True "synced, after a start in the same boot"
ls "$MNT/by-deps" | grep -qx "$key" || fail "the venv synced at start-up is not listed"
"$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app' || fail "the venv synced at start-up"
assert_eq "$(field "$key" builds)" 1 "the venv's builds after a start in the same boot"
mount_stop

# the machine restarted before the sync: another boot id
set_unsynced "$key" "00000000-0000-4000-8000-000000000000"
mount_start
grep -q "$key was not yet synced to disk when the machine restarted; it will be built again" "$DAEMON_LOG" \
    || fail "the daemon did not say why it drops the unsynced venv"
[ ! -e "$WORK/cache/store/$key" ] || fail "the unsynced venv of another boot is still in the store"
ls "$MNT/by-deps" | grep -qx "$key" && fail "by-deps lists the unsynced venv of another boot"
"$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app' || fail "the key did not build again"
assert_eq "$(field "$key" builds)" 2 "the venv's builds after a start in another boot"
wait_until 10 is_synced "$key" || fail "the rebuilt venv was not synced"
pass
