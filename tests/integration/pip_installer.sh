#!/usr/bin/env bash
# installer=pip: python -m venv + pip, offline from the wheelhouse.
. "$(dirname "$0")/lib.sh"
mount_start -o installer=pip
key=$(register ptdemo-app)
"$MNT/by-deps/$key/bin/python" -c 'import ptdemo_app, ptdemo_core; assert ptdemo_core.VERSION == "2.0"' \
    || fail "the pip-built venv does not import ptdemo_app"
grep -q -- "-m venv" "$MNT/logs/$key.log" || fail "the log does not show python -m venv"
grep -q -- "-m pip install" "$MNT/logs/$key.log" || fail "the log does not show pip install"
ls "$WORK/cache/store/$key"/lib/python3*/site-packages/ptdemo_core/__pycache__/*.pyc >/dev/null 2>&1 \
    || fail "pip did not compile bytecode"
pass
