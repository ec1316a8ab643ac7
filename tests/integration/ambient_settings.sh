#!/usr/bin/env bash
# Builds depend only on the key: the daemon's own installer settings — UV_* and
# PIP_* variables, pip.conf, uv.toml — change nothing (tox-uv#325). The key
# says find-links=<a wheelhouse with ptdemo-core 1.0>; the daemon's
# environment and config files point at one with ptdemo-core 2.0. The venv
# holds 1.0, with uv and with pip.
. "$(dirname "$0")/lib.sh"
OLD=$WORK/wh-old NEW=$WORK/wh-new
mkdir -p "$OLD" "$NEW"
cp "$WHEELHOUSE"/*.whl "$OLD/" && rm "$OLD"/ptdemo_core-2.0-*.whl
cp "$WHEELHOUSE"/ptdemo_core-2.0-*.whl "$NEW/"
export PACTOWN_FIND_LINKS=$OLD
mkdir -p "$WORK/xdg/pip" "$WORK/xdg/uv"
printf '[global]\nfind-links = %s\nupgrade = true\npre = true\n' "$NEW" >"$WORK/xdg/pip/pip.conf"
printf 'find-links = ["%s"]\n' "$NEW" >"$WORK/xdg/uv/uv.toml"
cp "$WORK/xdg/pip/pip.conf" "$WORK/pip-env.conf"

core_version() { "$MNT/by-deps/$1/bin/python" -c 'import ptdemo_core; print(ptdemo_core.VERSION)'; }
ambient() { # run the daemon with the ambient settings
    env UV_FIND_LINKS="$NEW" PIP_FIND_LINKS="$NEW" UV_INDEX_URL="file://$NEW" PIP_INDEX_URL="file://$NEW" \
        UV_PRERELEASE=allow PIP_UPGRADE=1 PIP_CONFIG_FILE="$WORK/pip-env.conf" XDG_CONFIG_HOME="$WORK/xdg" \
        UV_CONSTRAINT="$WORK/none.txt" PYTHONPATH="$NEW" "$@"
}
PACTOWNFS_REAL=$PACTOWNFS
PACTOWNFS="ambient $PACTOWNFS_REAL"
mount_start_ambient() {
    local before
    before=$(grep -c "ready at $MNT" "$DAEMON_LOG" 2>/dev/null || true)
    ambient "$PACTOWNFS_REAL" -f ${PACTOWN_FUSE_OPTS:-} "$MNT" "$@" >>"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    wait_until 20 sh -c "[ \$(grep -c 'ready at $MNT' '$DAEMON_LOG') -gt ${before:-0} ]" || fail "pactownfs did not mount"
}

mount_start_ambient
key=$(register ptdemo-core)
assert_eq "$(core_version "$key")" 1.0 "ptdemo-core with uv under ambient UV_*/PIP_* settings"
mount_stop
mount_start_ambient -o installer=pip
"$PACTOWN" cache rm "$key" >/dev/null || fail "cache rm"
assert_eq "$(core_version "$key")" 1.0 "ptdemo-core with pip under ambient PIP_* settings and pip.conf"
grep -q "install (pip)" "$MNT/logs/$key.log" || fail "the second build did not use pip"
# the transport settings stay (they cannot change what is installed)
pass
