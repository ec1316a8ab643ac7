"""peer_pactown.py — drives the pactown package (the Python reference
implementation of fast start, from PyPI) for tools/bench.

Runs inside the peer's own venv (bench/.work/peer-pactown). One long-lived
process, so that importing pactown is paid once and its in-process caches
stay warm, as in a server that uses it. Requests and answers are JSON, one a
line: requests on stdin, answers on the original stdout (pactown's own output
is sent to stderr).

  {"cmd": "init", "sandbox_root": DIR}
  {"cmd": "create", "name": N, "content": README}       fast_create_sandbox
  {"cmd": "run", "id": ID, "content": README, "port": P} ServiceRunner.fast_run
  {"cmd": "stop", "id": ID}
  {"cmd": "batch", "root": DIR, "items": [[name, README], ...], "concurrency": 4}
  {"cmd": "quit"}

Times are taken here around the awaited call (the peer's own work, without
process start-up): a measurement that favours the peer.
"""
import asyncio
import json
import os
import signal
import sys
import time
import traceback
import urllib.error
import urllib.request

# litellm (imported by markpact) fetches a price list from the network at import
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

_out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

from pathlib import Path  # noqa: E402

import pactown  # noqa: E402
from pactown.fast_start.starter import FastServiceStarter  # noqa: E402
from pactown.service_runner import ServiceRunner  # noqa: E402

state = {"runner": None, "procs": {}}


def reply(obj):
    _out.write(json.dumps(obj) + "\n")


def healthy(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=1) as r:
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except Exception:
        return False


def children_of(pid):
    """pid and its descendants, from /proc."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    s = f.read()
                parent[int(d)] = int(s[s.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return out


def running(pid):
    """Whether pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2:].split()[0] != "Z"


def kill_tree(pid):
    pids = children_of(pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + 10
        while time.time() < deadline and any(running(p) for p in pids):
            time.sleep(0.01)
        if not any(running(p) for p in pids):
            break
    try:
        os.waitpid(pid, 0)  # the service is this driver's child (subprocess.Popen in fast_run)
    except ChildProcessError:
        pass


async def handle(req):
    cmd = req["cmd"]
    if cmd == "init":
        root = Path(req["sandbox_root"])
        runner = ServiceRunner(sandbox_root=root, default_health_check="/", health_timeout=60)
        # the peer's admission control (overload throttling from /proc/stat) is
        # not what is measured: keep it from refusing starts on a busy machine
        mon = runner.security_policy.resource_monitor
        mon.cpu_threshold = mon.memory_threshold = 1000.0
        # nor its per-user quotas (the default FREE tier allows 5 starts an hour)
        from pactown.security.profiles import UserProfile, UserTier
        top = max(UserTier, key=lambda t: UserProfile.from_tier("anonymous", t).max_services_per_hour)
        runner.security_policy.set_user_profile(UserProfile.from_tier("anonymous", top))
        state["runner"] = runner
        return {"ok": True, "version": getattr(pactown, "__version__", "?")}
    runner = state["runner"]
    if cmd == "create":
        t0 = time.perf_counter()
        res = await runner.fast_starter.fast_create_sandbox(req["name"], req["content"])
        ms = (time.perf_counter() - t0) * 1000
        return {"ok": bool(res.success), "ms": ms, "cache_hit": bool(res.cache_hit), "message": res.message,
                "sandbox": str(res.sandbox_path) if res.sandbox_path else None}
    if cmd == "run":
        port = int(req["port"])
        t0 = time.perf_counter()
        res = await runner.fast_run(req["id"], req["content"], port, env={"MARKPACT_PORT": str(port)})
        ms = (time.perf_counter() - t0) * 1000
        total = ms
        pending = "health pending" in (res.message or "")
        if res.success and pending:
            # fast_run gives up waiting after 5 s: time until it really answers
            while not healthy(port) and time.perf_counter() - t0 < 120:
                await asyncio.sleep(0.005)
            total = (time.perf_counter() - t0) * 1000
        if res.pid:
            state["procs"][req["id"]] = res.pid
        return {"ok": bool(res.success) and healthy(port), "ms": total, "ms_returned": ms, "pending": pending,
                "message": res.message, "pid": res.pid}
    if cmd == "stop":
        sid = req["id"]
        pid = state["procs"].pop(sid, None)
        if pid:
            kill_tree(pid)
        # ServiceRunner.stop kills the process group of the service, which is
        # this driver's own (fast_run starts it without a new session): undo
        # the registration by hand instead
        name = runner._services.pop(sid, None)
        runner._service_users.pop(sid, None)
        if name:
            runner.sandbox_manager._processes.pop(name, None)
        runner.security_policy.unregister_service("anonymous", sid)
        return {"ok": True}
    if cmd == "batch":
        root = Path(req["root"])
        starter = FastServiceStarter(sandbox_root=root / "sandboxes", cache_root=root / "cache")
        sem = asyncio.Semaphore(int(req.get("concurrency", 4)))

        async def one(name, content):
            async with sem:
                t = time.perf_counter()
                try:
                    r = await starter.fast_create_sandbox(name, content)
                    return {"ok": bool(r.success), "hit": bool(r.cache_hit), "ms": (time.perf_counter() - t) * 1000,
                            "message": r.message}
                except Exception as e:  # the peer raises when a concurrent build of the same set fails
                    return {"ok": False, "hit": False, "ms": (time.perf_counter() - t) * 1000,
                            "message": "%s: %s" % (type(e).__name__, e)}

        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(n, c) for n, c in req["items"]))
        total = (time.perf_counter() - t0) * 1000
        return {"ok": True, "ms": total, "results": results}
    if cmd == "quit":
        for sid, pid in list(state["procs"].items()):
            kill_tree(pid)
        return {"ok": True, "quit": True}
    return {"ok": False, "error": "unknown command %s" % cmd}


async def main():
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        try:
            ans = await handle(json.loads(line))
        except Exception as e:
            ans = {"ok": False, "error": "%s: %s" % (type(e).__name__, e), "trace": traceback.format_exc()[-2000:]}
        reply(ans)
        if ans.get("quit"):
            break


if __name__ == "__main__":
    reply({"ok": True, "ready": True, "version": getattr(pactown, "__version__", "?")})
    asyncio.run(main())
