#!/usr/bin/env python3
"""bench.py — the pactown-fs benchmark suite (run it with tools/bench).

Mounts pactownfs for real on a temporary directory (as tests/integration/lib.sh
does, but installing from PyPI through a warm uv cache), measures the figures
of docs/BENCHMARKS.md against the peers and the floor in the same run, prints
a table and writes the raw samples to a JSON file.

Every figure is sampled repeatedly, the sides interleaved (A B A B ...) so
that a noisy neighbour on this shared machine hits both; the table shows
medians with the interquartile range, and ratios of medians.

Peers (installed here into bench/.work/, never system-wide):
  pactown   the PyPI package (Python reference implementation of fast start),
            in its own venv, driven by bench/peer_pactown.py
  uv        uv venv + uv pip install, warm uv cache
  pip       python -m venv + pip install, from a local wheelhouse (pip's warm cache)
  floor     the service started directly from the built venv; stat/ls on a
            plain local directory
"""
import argparse
import http.client
import json
import os
import platform
import resource
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / ".work"
BUILD = ROOT / "build"
PACTOWNFS = BUILD / "mount" / "pactownfs"
PACTOWN = BUILD / "tools" / "pactown" / "pactown"
FIXTURE = BENCH / "fixtures" / "fastapi-hello.md"
PEER_VERSION = "0.1.173"    # the pactown release these figures were taken with; --peer-version to change
FASTAPI_REQS = ["fastapi", "uvicorn"]
SET3D = FASTAPI_REQS + ["httpx"]   # figure 3d: a second set that shares most of its packages with the first
# figure 8: 20 requirement sets: those of ../shared/realworld/ and bench/fixtures/, then variants that
# add or pin one package each (versions that exist on PyPI)
FIG8_ADD = ["python-dotenv", "requests", "pyyaml", "jinja2", "itsdangerous", "markdown", "tomli"]
FIG8_PIN = ["fastapi==0.110.0", "click==8.1.7", "rich==13.7.1", "flask==3.0.3", "httpx==0.27.0",
            "sqlalchemy==2.0.30", "pydantic==2.7.0"]
# figure 7: five small requirement sets from PyPI (both sides install exactly these)
SETS7 = [["six"], ["idna"], ["attrs"], ["packaging"], ["six", "idna", "attrs"]]

UV_CACHE = WORK / "uv-cache"            # the warm uv cache: the daemon's builds and the uv baseline
# pip's HTTP cache does not keep PyPI's answers on this machine (measured: nothing is ever written to
# PIP_CACHE_DIR), so pip's "warm cache" is a local wheelhouse of the same wheels, installed with
# --no-index --find-links: no network at all, which favours pip and the pactown peer
WHEELHOUSE = WORK / "wheelhouse"
TOOLS_UV_CACHE = WORK / "uv-cache-tools"  # for installing the peer itself
PIP_OFFLINE = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
               "PIP_PROGRESS_BAR": "off"}


T0 = time.perf_counter()


def log(msg):
    print("bench: [%5.0f s] %s" % (time.perf_counter() - T0, msg), file=sys.stderr, flush=True)


# ---------------------------------------------------------------- statistics

def summary(samples):
    s = sorted(x for x in samples if x is not None)
    if not s:
        return None

    def q(p):
        k = (len(s) - 1) * p
        lo, hi = int(k), min(int(k) + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (k - lo)
    out = {"n": len(s), "median": statistics.median(s), "p25": q(0.25), "p75": q(0.75),
           "p10": q(0.10), "p90": q(0.90), "min": s[0], "max": s[-1], "samples": list(samples)}
    return thin(out)


MAX_SAMPLES = 1000


def thin(summ):
    """Keep at most MAX_SAMPLES raw samples in the JSON (evenly spaced, in run order);
    the statistics above are computed on all of them."""
    x = summ["samples"]
    if len(x) > MAX_SAMPLES:
        step = len(x) / MAX_SAMPLES
        summ["samples"] = [x[int(i * step)] for i in range(MAX_SAMPLES)]
        summ["samples_kept"] = "every %.1fth of %d" % (step, len(x))
    return summ


def med(x):
    return x["median"] if x else None


# ---------------------------------------------------------------- processes

def timed(argv, timeout=600, check=True, **kw):
    """Run argv; return (seconds, CompletedProcess)."""
    t0 = time.perf_counter()
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    dt = time.perf_counter() - t0
    if check and cp.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s%s" % (" ".join(map(str, argv)), cp.returncode, cp.stdout[-3000:],
                                                    cp.stderr[-3000:]))
    return dt, cp


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_ok(port, timeout=1.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", "/")
        return c.getresponse().status < 500
    except OSError:
        return False
    finally:
        c.close()


def group_alive(pgid):
    """Whether a process of group pgid still runs (zombies do not count)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def kill_group(pid, popen=None):
    """End process group pid: SIGTERM, then SIGKILL after 10 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.time() + 10
        while time.time() < deadline and group_alive(pid):
            time.sleep(0.01)
        if not group_alive(pid):
            break
    if popen is not None:
        popen.wait()


def rss_of(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                out[k] = int(v.split()[0]) / 1024.0  # MiB
    return out


def machine_info():
    info = {"nproc": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}
    with open("/proc/meminfo") as f:
        info["mem_total_mib"] = int(f.readline().split()[1]) // 1024
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    info["loadavg_start"] = open("/proc/loadavg").read().split()[:3]
    try:
        info["commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True).stdout.strip()
        info["worktree_dirty"] = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src",
                                                      "mount", "tools/pactown", "include"],
                                                     capture_output=True, text=True).stdout.strip())
    except OSError:
        pass
    return info


# ---------------------------------------------------------------- installs

def real_python():
    out = subprocess.run(["python3", "-c", "import os, sys; print(os.path.realpath(sys.executable))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return out


def find_uv():
    cp = subprocess.run(["python3", "-c", "import uv; print(uv.find_uv_bin())"], capture_output=True, text=True)
    if cp.returncode == 0 and cp.stdout.strip():
        return cp.stdout.strip()
    return shutil.which("uv")


def venv_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_", "UV_", "PACTOWN_"))}
    env.update(extra or {})
    return env


def install_peer(uv, py, version):
    """pactown into bench/.work/peer-pactown; returns (python, version) or raises."""
    venv = WORK / "peer-pactown"
    vpy = venv / "bin" / "python"
    want = "pactown==%s" % version if version else "pactown"
    probe = [str(vpy), "-c", "import os; os.environ['LITELLM_LOCAL_MODEL_COST_MAP']='True'; "
             "from importlib.metadata import version; print(version('pactown'))"]
    if vpy.exists():
        cp = subprocess.run(probe, capture_output=True, text=True, env=venv_env())
        if cp.returncode == 0 and (not version or cp.stdout.strip() == version):
            return vpy, cp.stdout.strip()
    if not uv:
        raise RuntimeError("uv is not installed: cannot make the peer's venv")
    log("installing %s into %s" % (want, venv))
    env = venv_env({"UV_CACHE_DIR": str(TOOLS_UV_CACHE)})
    try:
        timed([uv, "venv", "-q", "--allow-existing", "--python", py, str(venv)], env=env)
        timed([uv, "pip", "install", "-q", "--python", str(vpy), want], env=env, timeout=900)
    except RuntimeError as e:
        last = [ln for ln in str(e).splitlines() if ln.strip()][-1:]
        raise RuntimeError("uv pip install %s failed: %s" % (want, last[0].strip() if last else e))
    cp = subprocess.run(probe, capture_output=True, text=True, env=venv_env())
    if cp.returncode != 0:
        raise RuntimeError("pactown installed but does not import: %s" % cp.stderr[-800:])
    return vpy, cp.stdout.strip()


def warm_caches(uv, py, tmp):
    """Fill the uv and pip download caches with everything the figures install
    (once: bench/.work/warm.json remembers what was warmed, with which tools)."""
    every = sorted({r for s in SETS7 for r in s} | set(SET3D))
    stamp = WORK / "warm.json"
    what = {"reqs": every, "uv": uv, "python": py, "pip": "wheelhouse"}
    try:
        if json.loads(stamp.read_text()) == what and UV_CACHE.is_dir() and WHEELHOUSE.is_dir():
            return {"uv": True, "pip": True}
    except (OSError, ValueError):
        pass
    ok = {}
    if uv:
        d = tmp / "warm-uv"
        env = venv_env({"UV_CACHE_DIR": str(UV_CACHE)})
        try:
            timed([uv, "venv", "-q", "--python", py, str(d)], env=env)
            timed([uv, "pip", "install", "-q", "--python", str(d / "bin" / "python")] + every, env=env, timeout=900)
            ok["uv"] = True
        except Exception as e:
            ok["uv"] = "warming the uv cache failed: %s" % e
        shutil.rmtree(d, ignore_errors=True)
    try:
        shutil.rmtree(WHEELHOUSE, ignore_errors=True)
        timed([py, "-m", "pip", "download", "-q", "--disable-pip-version-check", "-d", str(WHEELHOUSE)] + every,
              env=venv_env(), timeout=900)
        d = tmp / "warm-pip"
        env = venv_env(PIP_OFFLINE)
        timed([py, "-m", "venv", str(d)], env=env)
        timed([str(d / "bin" / "pip"), "install", "-q"] + every, env=env, timeout=900)
        ok["pip"] = True
        shutil.rmtree(d, ignore_errors=True)
    except Exception as e:
        ok["pip"] = "pip download / python -m venv + pip install failed: %s" % e
    if all(v is True for v in ok.values()) and uv:
        stamp.write_text(json.dumps(what))
    return ok


def build_helpers():
    """bench/helpers/*.c with cc; mkentries links build/libpactown.a."""
    out = WORK / "bin"
    out.mkdir(parents=True, exist_ok=True)
    libs = subprocess.run(["pkg-config", "--libs", "lmdb", "libxxhash", "inih", "jansson"],
                          capture_output=True, text=True, check=True).stdout.split()
    timed(["cc", "-O2", "-Wall", "-Wextra", "-D_GNU_SOURCE", "-I", str(ROOT / "include"), "-o", str(out / "mkentries"),
           str(BENCH / "helpers" / "mkentries.c"), str(BUILD / "libpactown.a")] + libs + ["-lpthread"])
    timed(["cc", "-O2", "-Wall", "-Wextra", "-o", str(out / "statbench"), str(BENCH / "helpers" / "statbench.c")])
    return out / "mkentries", out / "statbench"


# ---------------------------------------------------------------- the mount

class Mount:
    """pactownfs on <run>/<name>/mnt with its own cache and sandboxes."""

    def __init__(self, run, name, uv, seed=True, extra=None):
        self.seed = seed
        self.dir = run / name
        self.mnt = self.dir / "mnt"
        self.cache = self.dir / "cache"
        self.sandboxes = self.dir / "sandboxes"
        self.mnt.mkdir(parents=True, exist_ok=True)
        (self.dir / "pactown.conf").write_text("")
        self.env = venv_env({
            "PACTOWN_CONFIG": str(self.dir / "pactown.conf"),
            "PACTOWN_CACHE_DIR": str(self.cache),
            "PACTOWN_MOUNTPOINT": str(self.mnt),
            "PACTOWN_SANDBOX_ROOT": str(self.sandboxes),
            # no eviction while measuring
            "PACTOWN_MAX_ENTRIES": "0",
            "PACTOWN_MAX_AGE_HOURS": "0",
        })
        self.env.update(extra or {})
        if uv:
            self.env["PACTOWN_UV"] = uv
        self.proc = None
        self.logpath = self.dir / "daemon.log"

    def start(self):
        # The builder's uv cache lives in the store (<store>/.uv, pactown/uvcache.h), so that venvs hard-link
        # its files: seeded with a copy of the warm cache the uv baseline uses, both sides start from the same
        # unpacked wheels ("warm cache"); pactownfs compiles each wheel's bytecode on its first build
        store_cache = self.cache / "store" / ".uv"
        if self.seed and UV_CACHE.is_dir() and not store_cache.exists():
            store_cache.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(UV_CACHE, store_cache, symlinks=True)
            store_cache.chmod(0o700)
        self.logf = open(self.logpath, "w")
        self.proc = subprocess.Popen([str(PACTOWNFS), "-f", str(self.mnt)], stdout=self.logf, stderr=self.logf,
                                     env=self.env, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if "ready at %s" % self.mnt in self.logpath.read_text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("pactownfs did not mount %s:\n%s" % (self.mnt, self.logpath.read_text()[-2000:]))

    def cli(self, args, timeout=600, check=True):
        return timed([str(PACTOWN)] + list(args), timeout=timeout, check=check, env=self.env)

    def stop(self):
        if self.proc is None:
            return
        try:
            cp = subprocess.run([str(PACTOWN), "ps", "--json"], capture_output=True, text=True, env=self.env, timeout=30)
            for s in json.loads(cp.stdout or "[]"):
                if s.get("running") and s.get("pid"):
                    kill_group(int(s["pid"]))
        except Exception:
            pass
        for pidfile in (self.cache / "warm").glob("*/pid"):  # warm processes (docs/WARM.md): init's children
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        subprocess.run(["fusermount3", "-u", str(self.mnt)], capture_output=True)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.logf.close()
        for m in (self.mnt, self.cache / "store"):
            if (" %s " % m) in open("/proc/mounts").read():
                subprocess.run(["umount", "-l", str(m)], capture_output=True)

    def key_of(self, reqs):
        _, cp = self.cli(["hash"] + list(reqs))
        return re.search(r"^key ([0-9a-f]{32})$", cp.stdout, re.M).group(1)


# ---------------------------------------------------------------- the registry

class Registry:
    """Debian's docker-registry (CNCF distribution) on a free loopback port, storage in <run>/<name>."""

    def __init__(self, run, name):
        self.dir = run / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d/bench/venvs" % self.port
        (self.dir / "config.yml").write_text(
            "version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\n"
            "storage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%d}\n" % (self.dir / "data", self.port))
        self.log = open(self.dir / "log", "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.dir / "config.yml")], stdout=self.log,
                                     stderr=self.log, start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/v2/" % self.port, timeout=1)
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start: %s" % (self.dir / "log").read_text()[-500:])

    def blob_bytes(self):
        """the bytes of every blob the registry stores (each once, as it stores them)"""
        root = self.dir / "data" / "docker" / "registry" / "v2" / "blobs"
        return sum(p.stat().st_size for p in root.rglob("data")) if root.is_dir() else 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def registry_env(url):
    return {"PACTOWN_REGISTRY": url, "PACTOWN_REGISTRY_TIMEOUT": "10"}


def settle_inodes():
    """Before a timed step that creates many inodes: ext4 without a journal skips inodes freed in the last
    5 s (35 s while their inode table block is dirty) when it allocates new ones (recently_deleted(),
    fs/ext4/ialloc.c); measured, a pull that creates 879 files took 3x as long right after 2,000 files were
    removed beside it. The step before (another side, a `cache rm`) is not the step's to pay for: sync,
    then wait past those 5 s."""
    os.sync()
    time.sleep(5.2)


def wait_pushed(m, n, timeout=300):
    """wait until the mount's stats say n venvs were pushed (or failed to be)"""
    deadline = time.time() + timeout
    while time.time() < deadline:
        reg = json.loads((m.mnt / "stats").read_text()).get("registry", {})
        if reg.get("pushed", 0) + reg.get("push_failures", 0) >= n:
            return reg
        time.sleep(0.1)
    raise RuntimeError("the pushes did not end within %d s" % timeout)


# ---------------------------------------------------------------- the peer

class Peer:
    """bench/peer_pactown.py in the peer's venv: JSON lines over pipes."""

    def __init__(self, vpy, errlog):
        env = venv_env(dict(PIP_OFFLINE, LITELLM_LOCAL_MODEL_COST_MAP="True",
                        # `python3 -m venv` of the peer: the real interpreter, not a pyenv shim
                            PATH=str(Path(real_python()).parent) + ":" + os.environ.get("PATH", "")))
        self.errlog = open(errlog, "a")
        self.p = subprocess.Popen([str(vpy), str(BENCH / "peer_pactown.py")], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.errlog, text=True, env=env,
                                  start_new_session=True)
        self.ready = None

    def wait_ready(self):
        if self.ready is None:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("the pactown peer driver exited at start (see its log)")
            self.ready = json.loads(line)
        return self.ready

    def rpc(self, obj):
        self.wait_ready()
        self.p.stdin.write(json.dumps(obj) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("the pactown peer driver exited (see its log)")
        ans = json.loads(line)
        if not ans.get("ok") and "error" in ans:
            raise RuntimeError("peer: %s\n%s" % (ans["error"], ans.get("trace", "")))
        return ans

    def close(self):
        try:
            self.rpc({"cmd": "quit"})
            self.p.wait(20)
        except Exception:
            pass
        if self.p.poll() is None:
            kill_group(self.p.pid, self.p)
        self.errlog.close()


# ---------------------------------------------------------------- the suite

class Suite:
    def __init__(self, args):
        self.a = args
        self.q = args.quick
        self.res = {"mode": "quick" if self.q else "full", "machine": machine_info(), "peers": {}, "figures": {},
                    "notes": []}
        self.mounts = []
        self.want9c = False
        self.peer = None
        self.run = Path(tempfile.mkdtemp(prefix="pactown-bench."))
        self.fixture = FIXTURE.read_text()

    def n(self, full, quick):
        return quick if self.q else full

    def fig(self, name, **kw):
        self.res["figures"].setdefault(name, {}).update(kw)

    def note(self, msg):
        log("note: " + msg)
        self.res["notes"].append(msg)

    # -- setup -----------------------------------------------------------
    def setup(self):
        WORK.mkdir(parents=True, exist_ok=True)
        self.py = real_python()
        self.uv = find_uv()
        self.res["machine"]["interpreter"] = self.py
        peers = self.res["peers"]
        if self.uv:
            peers["uv"] = {"ok": True, "bin": self.uv,
                           "version": subprocess.run([self.uv, "--version"], capture_output=True,
                                                     text=True).stdout.strip()}
        else:
            peers["uv"] = {"ok": False, "error": "uv not found (tools/setup installs it with pip)"}
            log("WARNING: uv could not be found: the uv baseline is skipped and pactownfs builds with pip")
        log("helpers: building bench/helpers with cc")
        self.mkentries, self.statbench = build_helpers()
        if self.a.no_peer:
            peers["pactown"] = {"ok": False, "error": "skipped (--no-peer)"}
        else:
            try:
                vpy, ver = install_peer(self.uv, self.py, self.a.peer_version)
                peers["pactown"] = {"ok": True, "version": ver, "venv": str(vpy.parent.parent)}
                self.peer = Peer(vpy, self.run / "peer.log")  # imports pactown while the caches warm
            except Exception as e:
                peers["pactown"] = {"ok": False, "error": str(e)[-1500:]}
                log("WARNING: the pactown peer could not be installed: %s" % str(e)[-500:])
        log("warming the uv and pip caches")
        warm = warm_caches(self.uv, self.py, self.run)
        pipver = subprocess.run([self.py, "-m", "pip", "--version"], capture_output=True, text=True).stdout.split()
        peers["pip"] = {"ok": warm.get("pip") is True, "version": pipver[1] if len(pipver) > 1 else "?"}
        if warm.get("pip") is not True:
            peers["pip"]["error"] = warm.get("pip")
            log("WARNING: %s" % warm.get("pip"))
        if self.uv and warm.get("uv") is not True:
            peers["uv"] = {"ok": False, "error": warm.get("uv")}
            log("WARNING: %s" % warm.get("uv"))
        if self.peer:
            try:
                r = self.peer.wait_ready()
                # --quick keeps the peer's venv cache between runs (its cold build is a pip build)
                root = WORK / "peer-quick" if self.q else self.run / "peer" / "sandboxes"
                self.peer.rpc({"cmd": "init", "sandbox_root": str(root)})
                log("pactown peer %s ready" % r.get("version"))
            except Exception as e:
                peers["pactown"] = {"ok": False, "error": "the peer driver failed: %s" % str(e)[-1500:]}
                log("WARNING: the pactown peer failed to start: %s" % str(e)[-500:])
                self.peer = None

    def mount(self, name, seed=True, extra=None):
        m = Mount(self.run, name, self.uv if self.res["peers"]["uv"].get("ok") else None, seed, extra)
        self.mounts.append(m)
        m.start()
        return m

    def unmount(self, m):
        m.stop()
        self.mounts.remove(m)

    # -- baselines -------------------------------------------------------
    def uv_build(self, d, reqs, compile_copy=False):
        env = venv_env({"UV_CACHE_DIR": str(UV_CACHE)})
        extra = ["--compile-bytecode", "--link-mode", "copy"] if compile_copy else []
        t0 = time.perf_counter()
        timed([self.uv, "venv", "-q", "--python", self.py, str(d)], env=env)
        timed([self.uv, "pip", "install", "-q", "--python", str(d / "bin" / "python")] + extra + reqs, env=env)
        return time.perf_counter() - t0

    def pip_build(self, d, reqs):
        env = venv_env(PIP_OFFLINE)
        t0 = time.perf_counter()
        timed([self.py, "-m", "venv", str(d)], env=env)
        timed([str(d / "bin" / "pip"), "install", "-q"] + reqs, env=env)
        return time.perf_counter() - t0

    # -- figure 3: cold builds (fills the cache for 1, 2, 5) ---------------
    def cold_prepare(self, m, readme, key, sid):
        """One cold build through `pactown run --prepare`: the venv removed first. (ms, build ms)"""
        m.cli(["cache", "rm", key, "--force"], check=False)
        dt, cp = m.cli(["run", str(readme), "--prepare", "--service-id", sid], timeout=900)
        if "cache miss" not in cp.stderr:
            raise RuntimeError("figure 3: expected a cache miss:\n" + cp.stderr)
        b = re.search(r"built \S+ in ([0-9.]+) s", cp.stderr)
        return dt * 1000, float(b.group(1)) * 1000 if b else None

    def fig3(self, m):
        log("figure 3: cold builds of fastapi + uvicorn (+ httpx), cold run to healthy (pactownfs, uv, pip)")
        key = m.key_of(FASTAPI_REQS)
        key3d = m.key_of(SET3D)
        self.key = key
        readme3d = self.run / "fastapi-httpx.md"
        readme3d.write_text(self.fixture.replace("fastapi\nuvicorn\n", "fastapi\nuvicorn\nhttpx\n"))
        ours, ours_build, uvs, uvcc, pips = [], [], [], [], []
        ours3d, uvs3d, ours3e, uvs3e = [], [], [], []
        reps = self.n(7, 5)  # uv revalidates its cache with PyPI on both sides: the network's noise
        uv_ok = self.res["peers"]["uv"].get("ok")
        pip_ok = self.res["peers"]["pip"].get("ok")
        # the first build of each set compiles its wheels' bytecode into the store's uv cache (once per wheel);
        # the repetitions below find it there, as every later set that shares a wheel does
        first = self.cold_prepare(m, FIXTURE, key, "cold")[0]
        first3d = self.cold_prepare(m, readme3d, key3d, "cold3d")[0]
        for i in range(reps):
            dt, bt = self.cold_prepare(m, FIXTURE, key, "cold")
            ours.append(dt)
            ours_build.append(bt)
            ours3d.append(self.cold_prepare(m, readme3d, key3d, "cold3d")[0])
            # 3e: a cold `pactown run` to healthy (build and start)
            m.cli(["cache", "rm", key, "--force"], check=False)
            port = free_port()
            dt, cp = m.cli(["run", str(FIXTURE), "--detach", "--service-id", "cold3e", "--port", str(port),
                            "--timeout", "120", "--no-warm"], timeout=900)
            if "cache miss" not in cp.stderr:
                raise RuntimeError("figure 3e: expected a cache miss:\n" + cp.stderr)
            ours3e.append(dt * 1000)
            m.cli(["stop", "cold3e"])
            if uv_ok:
                d = self.run / "uv-venv"
                shutil.rmtree(d, ignore_errors=True)
                uvs.append(self.uv_build(d, FASTAPI_REQS) * 1000)
                shutil.rmtree(d, ignore_errors=True)
                uvs3d.append(self.uv_build(d, SET3D) * 1000)
                shutil.rmtree(d, ignore_errors=True)
                t = self.uv_build(d, FASTAPI_REQS) * 1000
                sb = self.run / "uv-sandbox"
                sb.mkdir(exist_ok=True)
                shutil.copy(m.sandboxes / "cold" / "app.py", sb / "app.py")
                uvs3e.append(t + self.floor_start(sb, free_port(), venv=str(d)))
                if i < self.n(3, 1):
                    shutil.rmtree(d, ignore_errors=True)
                    uvcc.append(self.uv_build(d, FASTAPI_REQS, compile_copy=True) * 1000)
            if pip_ok and i < self.n(3, 0):
                d = self.run / "pip-venv"
                shutil.rmtree(d, ignore_errors=True)
                pips.append(self.pip_build(d, FASTAPI_REQS) * 1000)
        self.venv = m.cli(["run", str(FIXTURE), "--prepare", "--service-id", "cold"])[1].stdout.strip()
        _, show = m.cli(["cache", "ls", "--json"])
        peer_cold = None
        if self.peer:
            log("figure 3: the pactown peer's first (cold) sandbox: python -m venv + pip install")
            r = self.peer.rpc({"cmd": "create", "name": "cold", "content": self.fixture})
            peer_cold = r["ms"] if r["ok"] and not r["cache_hit"] else None
        self.fig("3", ours=summary(ours), ours_cli_build_ms=summary(ours_build), uv=summary(uvs),
                 uv_compile_copy=summary(uvcc), pip=summary(pips), peer_pactown_cold_ms=peer_cold,
                 ours_first_build_ms=first, cache_ls=json.loads(show.stdout), key=key, venv=self.venv)
        self.fig("3d", ours=summary(ours3d), uv=summary(uvs3d), ours_first_build_ms=first3d, key=key3d)
        self.fig("3e", ours=summary(ours3e), uv=summary(uvs3e))
        self.uv_samples = uvs

    # -- figure 1: sandbox ready on a hit --------------------------------
    def fig1(self, m):
        log("figure 1: sandbox ready on a cache hit (pactown run --prepare vs pactown fast_create_sandbox)")
        ours, ours_self, peer = [], [], []
        for i in range(self.n(30, 10)):
            dt, cp = m.cli(["run", str(FIXTURE), "--prepare", "--service-id", "hit%d" % (i % 5)])
            if "cache hit" not in cp.stderr:
                raise RuntimeError("figure 1: expected a cache hit:\n" + cp.stderr)
            ours.append(dt * 1000)
            s = re.search(r"sandbox ready in ([0-9.]+) ms", cp.stderr)
            ours_self.append(float(s.group(1)) if s else None)
            if self.peer and i < self.n(20, 6):
                r = self.peer.rpc({"cmd": "create", "name": "hit%d" % (i % 5), "content": self.fixture})
                if not (r["ok"] and r["cache_hit"]):
                    self.note("figure 1: the pactown peer missed its cache: %s" % r.get("message"))
                peer.append(r["ms"])
        self.fig("1", ours=summary(ours), ours_self_reported=summary(ours_self), peer_pactown=summary(peer))
        # 1b: the same against making the env with uv from a warm cache (samples of figure 3)
        self.fig("1b", ours=summary(ours), uv=summary(self.uv_samples))

    # -- figure 2: run to healthy ----------------------------------------
    def floor_start(self, sandbox, port, venv=None, readme_text=None):
        venv = venv or self.venv
        env = venv_env({"PATH": "%s/bin:%s" % (venv, os.environ.get("PATH", "")), "VIRTUAL_ENV": venv,
                        "PORT": str(port), "MARKPACT_PORT": str(port)})
        run_cmd = re.search(r"```bash markpact:run\n(.*?)\n```", readme_text or self.fixture, re.S).group(1)
        t0 = time.perf_counter()
        p = subprocess.Popen(["/bin/sh", "-c", run_cmd], cwd=sandbox, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        while not http_ok(port, 0.5):
            if p.poll() is not None:
                raise RuntimeError("floor: the service exited with %s" % p.returncode)
            if time.perf_counter() - t0 > 120:
                raise RuntimeError("floor: no answer in 120 s")
            time.sleep(0.005)
        dt = time.perf_counter() - t0
        kill_group(p.pid, p)
        return dt * 1000

    def fig2(self, m):
        log("figure 2: run to healthy on a hit (pactown run --detach vs pactown fast_run vs the floor)")
        ours, ours_self, peer, peer_ret, floor = [], [], [], [], []
        floor_sb = self.run / "floor-sandbox"
        floor_sb.mkdir(exist_ok=True)
        shutil.copy(m.sandboxes / "cold" / "app.py", floor_sb / "app.py")
        self.floor_start(floor_sb, free_port())  # warm the page cache once
        for i in range(self.n(10, 3)):
            port = free_port()
            dt, cp = m.cli(["run", str(FIXTURE), "--detach", "--service-id", "run%d" % i, "--port", str(port),
                            "--timeout", "120", "--no-warm"])  # a cold start (figure 2w is the warm one)
            ours.append(dt * 1000)
            s = re.search(r"running in ([0-9.]+) ms", cp.stderr)
            ours_self.append(float(s.group(1)) if s else None)
            m.cli(["stop", "run%d" % i])
            if self.peer:
                port = free_port()
                r = self.peer.rpc({"cmd": "run", "id": "run%d" % i, "content": self.fixture, "port": port})
                if not r["ok"]:
                    self.note("figure 2: pactown fast_run failed: %s" % r.get("message"))
                else:
                    peer.append(r["ms"])
                    peer_ret.append(r["ms_returned"])
                    if r.get("pending"):
                        self.note("figure 2: fast_run returned 'health pending' after %.0f ms; timed until healthy"
                                  % r["ms_returned"])
                self.peer.rpc({"cmd": "stop", "id": "run%d" % i})
            floor.append(self.floor_start(floor_sb, free_port()))
        self.fig("2", ours=summary(ours), ours_self_reported=summary(ours_self), peer_pactown=summary(peer),
                 peer_pactown_returned=summary(peer_ret), floor=summary(floor))
        self.fig2w(m, floor_sb)

    def warm_ready(self, m, key="", timeout=120):
        """wait until a warm process of the mount (of key) has preloaded (it then listens: docs/WARM.md)"""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if list((m.cache / "warm").glob("%s*/preloaded" % key)):
                return
            time.sleep(0.05)
        raise RuntimeError("no warm process got ready within %d s: %s" % (timeout, [
            p.read_text()[-500:] for p in (m.cache / "warm").glob("*/zygote.log")]))

    def warm_vs_floor(self, m, readme, name, reps):
        """pactown run --warm to healthy on a hit against the floor (the run command started cold from the
        built venv by /bin/sh, in a copy of the sandbox), interleaved; the warm process started by a first
        run, ready, and taught by one more (a child names what it imports in its first seconds)"""
        text = readme.read_text()
        _, cp = m.cli(["run", str(readme), "--prepare", "--service-id", name + "-prep"], timeout=1800)
        venv = cp.stdout.strip().splitlines()[-1]
        floor_sb = self.run / (name + "-floor")
        shutil.copytree(m.sandboxes / (name + "-prep"), floor_sb, symlinks=True)
        self.floor_start(floor_sb, free_port(), venv, text)  # the page cache warmed once
        for sid in (name + "-first", name + "-teach"):
            port = free_port()
            m.cli(["run", str(readme), "--detach", "--service-id", sid, "--port", str(port), "--warm", "--timeout", "120"])
            m.cli(["stop", sid])
            self.warm_ready(m, os.path.basename(venv))
        warm, warm_self, floor = [], [], []
        for i in range(reps):
            port = free_port()
            dt, cp = m.cli(["run", str(readme), "--detach", "--service-id", "%s%d" % (name, i), "--port", str(port),
                            "--timeout", "120", "--warm"])
            if ", warm)" not in cp.stderr:
                raise RuntimeError("%s: the start was not warm:\n%s" % (name, cp.stderr[-1500:]))
            warm.append(dt * 1000)
            s = re.search(r"running in ([0-9.]+) ms", cp.stderr)
            warm_self.append(float(s.group(1)) if s else None)
            m.cli(["stop", "%s%d" % (name, i)])
            floor.append(self.floor_start(floor_sb, free_port(), venv, text))
        return {"ours": summary(warm), "ours_self_reported": summary(warm_self), "floor": summary(floor)}

    def fig2w(self, m, floor_sb):
        """figures 2w and 2w': pactown run to healthy on a hit, forked from the venv's warm process, vs the
        floor: fastapi+uvicorn, then a flask service and a streamlit one"""
        log("figure 2w: run to healthy on a hit, warm start (pactown run --warm vs the floor)")
        self.fig("2w", **self.warm_vs_floor(m, FIXTURE, "fastapi", self.n(10, 3)))
        for name in ("flask", "streamlit"):
            log("figure 2w': %s, warm start vs the floor" % name)
            try:
                self.fig("2w-" + name, **self.warm_vs_floor(m, BENCH / "fixtures" / "warm" / ("%s-hello.md" % name),
                                                             name, self.n(7, 3)))
            except Exception as e:
                self.note("figure 2w' (%s) failed: %s" % (name, str(e)[-600:]))

    # -- figure 5: import through .venv vs the store path -------------------
    def fig5(self, m):
        log("figure 5: python -c 'import fastapi' through the sandbox's .venv vs the store path")
        sb = m.sandboxes / "cold"
        a = [str(sb / ".venv" / "bin" / "python"), "-c", "import fastapi"]
        b = [str(Path(self.venv) / "bin" / "python"), "-c", "import fastapi"]
        env = venv_env()
        for argv in (a, b, a, b):
            timed(argv, cwd=sb, env=env)
        va, vb, ratios, ca, cb = [], [], [], [], []
        for i in range(self.n(40, 8)):
            order = ((a, va, ca), (b, vb, cb)) if i % 2 == 0 else ((b, vb, cb), (a, va, ca))
            for argv, wall, cpu in order:
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                wall.append(timed(argv, cwd=sb, env=env)[0] * 1000)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu.append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
            ratios.append(va[-1] / vb[-1])
        sys_path = subprocess.run(a[:1] + ["-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                                  cwd=sb, env=env).stdout.strip()
        self.fig("5", ours=summary(va), store=summary(vb), pair_ratio=summary(ratios), ours_cpu_ms=summary(ca),
                 store_cpu_ms=summary(cb), sandbox_sys_prefix=sys_path)

    # -- figures 4 and 6: 10,000 ready entries ----------------------------
    def fig4_6(self):
        n = 10000
        log("figures 4 and 6: %d ready entries (bench/helpers/mkentries), lookups, ls, daemon memory" % n)
        # the entries and a local mirror (symlinks to the same store directories) are kept in
        # bench/.work/entries between runs; mkentries resets their index entries each time
        m = Mount(WORK, "entries", self.uv if self.res["peers"]["uv"].get("ok") else None)
        m.env["PACTOWN_SANDBOX_ROOT"] = str(self.run / "entries-sandboxes")
        m.mnt = self.run / "entries-mnt"  # never a mount inside the work tree
        m.mnt.mkdir()
        m.env["PACTOWN_MOUNTPOINT"] = str(m.mnt)
        t0 = time.perf_counter()
        # a fresh index each run (the store's directories are kept): an index rewritten by every earlier run
        # grew to 387 MB here, and its freed pages, not the daemon, filled 34 MiB of its RSS (the same with
        # the daemon of an earlier commit)
        shutil.rmtree(m.cache / "index", ignore_errors=True)
        cp = subprocess.run([str(self.mkentries), str(m.cache), str(n)], capture_output=True, text=True, check=True)
        keys = cp.stdout.split()
        # the first k1 keys get a fresh access time (no index write on their first lookup): the breakdown of 4a
        k1 = self.n(1000, 300)
        subprocess.run([str(self.mkentries), str(m.cache), str(k1), "0"], capture_output=True, check=True)
        local = WORK / "entries" / "local-by-deps"
        local.mkdir(exist_ok=True)
        have = set(os.listdir(local))
        for k in keys:
            if k not in have:
                os.symlink(str(m.cache / "store" / k), str(local / k))
        mk_s = time.perf_counter() - t0
        self.mounts.append(m)
        m.start()
        rss = {"idle": rss_of(m.proc.pid)}
        bydeps = m.mnt / "by-deps"
        # 6: ls, both sides interleaved; plus readdir in-process
        ls_ours, ls_local, rd_ours, rd_local = [], [], [], []
        count = None
        for i in range(self.n(15, 5) + 1):
            for side, d, acc in (("ours", bydeps, ls_ours), ("local", local, ls_local)):
                dt, cp = timed(["ls", str(d)])
                if side == "ours":
                    count = len(cp.stdout.split())
                if i > 0:  # the first round warms up
                    acc.append(dt * 1000)
        for d, acc in ((bydeps, rd_ours), (local, rd_local)):
            _, cp = timed([str(self.statbench), "readdir", str(d), str(self.n(15, 5))])
            acc.extend(int(line.split()[0]) / 1e6 for line in cp.stdout.splitlines())
        rss["after_ls"] = rss_of(m.proc.pid)
        # 4: first lookups: each key once, stat (follows the link: lookup + readlink + the venv dir)
        # and, on other keys, lstat (the lookup alone)
        first = {}
        # (the fresh ones first: their access time must stay within atime_throttle, 60 s)
        for mode, label, chunk in (("stat", "stat_fresh", keys[:k1]), ("stat", "stat", keys[k1:2 * k1]),
                                   ("lstat", "lstat", keys[2 * k1:3 * k1])):
            lst = self.run / ("keys-%s.txt" % label)
            lst.write_text("".join("%s/%s\n" % (bydeps, k) for k in chunk))
            _, cp = timed([str(self.statbench), "each", mode, str(lst)])
            first[label] = [int(x) / 1000.0 for x in cp.stdout.split()]
        # repeated (kernel-cached) stat of one key vs a local symlink to a local directory
        rep_ours, rep_local = [], []
        reps = self.n(20000, 5000)
        for _ in range(3):
            for path, acc in ((bydeps / keys[0], rep_ours), (local / keys[0], rep_local)):
                _, cp = timed([str(self.statbench), "repeat", "stat", str(path), str(reps)])
                acc.extend(int(x) / 1000.0 for x in cp.stdout.split())
        # memory once the kernel holds a node for every key
        rest = self.run / "keys-rest.txt"
        rest.write_text("".join("%s/%s\n" % (bydeps, k) for k in keys[3 * k1:]))
        timed([str(self.statbench), "each", "lstat", str(rest)])
        rss["after_all_lookups"] = rss_of(m.proc.pid)
        _, st = m.cli(["cache", "stats", "--json"])
        self.unmount(m)
        self.fig("4", first_stat_us=summary(first["stat"]), first_lstat_us=summary(first["lstat"]),
                 first_stat_fresh_atime_us=summary(first["stat_fresh"]),
                 repeat_stat_us=summary(rep_ours), local_stat_us=summary(rep_local))
        worst = max(r["VmRSS"] for r in rss.values())
        self.fig("6", entries_listed=count, ls_ms=summary(ls_ours), local_ls_ms=summary(ls_local),
                 readdir_ms=summary(rd_ours), local_readdir_ms=summary(rd_local), rss_mib=rss, rss_max_mib=worst,
                 mkentries_s=mk_s, cache_stats=json.loads(st.stdout))

    # -- figure 7: 100 sandboxes over 5 sets, 4 at a time -------------------
    def fig7(self):
        total = self.n(100, 20)
        log("figure 7: %d sandboxes over %d requirement sets, 4 at a time (pactown-fs vs pactown)" % (total, len(SETS7)))
        d = self.run / "fig7"
        d.mkdir()
        readmes = []
        for i, reqs in enumerate(SETS7):
            p = d / ("set%d.md" % i)
            p.write_text("# set %d\n\n```text markpact:deps python\n%s\n```\n\n```python markpact:file path=hello.py\n"
                         "print('hello')\n```\n\n```bash markpact:run\npython -m http.server ${MARKPACT_PORT:-8001}\n"
                         "```\n" % (i, "\n".join(reqs)))
            readmes.append(p)
        items = [("f7-%03d" % i, readmes[i % len(SETS7)]) for i in range(total)]
        m = self.mount("fig7")

        def one(item):
            sid, readme = item
            dt, cp = m.cli(["run", str(readme), "--prepare", "--service-id", sid], timeout=900, check=False)
            return {"ok": cp.returncode == 0, "ms": dt * 1000, "hit": "cache hit" in cp.stderr,
                    "err": cp.stderr[-400:] if cp.returncode else ""}
        t0 = time.perf_counter()
        with ThreadPoolExecutor(4) as ex:
            ours = list(ex.map(one, items))
        ours_ms = (time.perf_counter() - t0) * 1000
        _, st = m.cli(["cache", "stats", "--json"])
        stats = json.loads(st.stdout)
        self.fig7w(m, items, readmes)
        self.unmount(m)
        fig = {"sandboxes": total, "sets": len(SETS7),
               "ours": {"total_ms": ours_ms, "failures": sum(not r["ok"] for r in ours),
                        "builds": stats.get("builds"), "misses": stats.get("misses"), "hits": stats.get("hits"),
                        "cli_hits": sum(r["hit"] for r in ours), "per_sandbox_ms": summary([r["ms"] for r in ours]),
                        "errors": [r["err"] for r in ours if not r["ok"]][:3]}}
        if self.q:
            fig["peer_skipped"] = "skipped in --quick (its 5 or more pip builds take a minute or two)"
        elif self.peer:
            content = {p: p.read_text() for p in readmes}
            r = self.peer.rpc({"cmd": "batch", "root": str(self.run / "fig7-peer"), "concurrency": 4,
                               "items": [[sid, content[p]] for sid, p in items]})
            res = r["results"]
            fig["peer_pactown"] = {"total_ms": r["ms"], "failures": sum(not x["ok"] for x in res),
                                   "builds": sum(x["ok"] and not x["hit"] for x in res),
                                   "hits": sum(x["ok"] and x["hit"] for x in res),
                                   "per_sandbox_ms": summary([x["ms"] for x in res]),
                                   "errors": [x["message"] for x in res if not x["ok"]][:3]}
        self.fig("7", **fig)

    def fig7w(self, m, items, readmes):
        """figure 7w: the same sandboxes started to healthy, 4 at a time, cold (--no-warm) and then warm (each
        set's warm process started and taught by two runs first); the starts are timed, the stops after them
        are not"""
        log("figure 7w: %d services over %d sets started 4 at a time, cold then warm" % (len(items), len(readmes)))

        def start(item, how, stop=False):
            sid, readme = item
            port = free_port()
            dt, cp = m.cli(["run", str(readme), "--detach", "--service-id", sid, "--port", str(port), how,
                            "--timeout", "120"], timeout=300, check=False)
            if stop:
                m.cli(["stop", sid], check=False)
            return {"ok": cp.returncode == 0, "ms": dt * 1000, "warm": ", warm)" in cp.stderr,
                    "err": cp.stderr[-300:] if cp.returncode else ""}

        def batch(how):
            t0 = time.perf_counter()
            with ThreadPoolExecutor(4) as ex:
                res = list(ex.map(lambda it: start(it, how), items))
            ms = (time.perf_counter() - t0) * 1000
            with ThreadPoolExecutor(4) as ex:
                list(ex.map(lambda it: m.cli(["stop", it[0]], check=False), items))
            return ms, res
        cold_ms, cold = batch("--no-warm")
        for i, readme in enumerate(readmes):  # each set's warm process: started, then taught
            for k in range(2):
                start(("f7w-teach-%d-%d" % (i, k), readme), "--warm", stop=True)
                deadline = time.time() + 60
                while time.time() < deadline and len(list((m.cache / "warm").glob("*/preloaded"))) < i + 1:
                    time.sleep(0.05)
        warm_ms, warm = batch("--warm")
        self.fig("7w", services=len(items), cold_ms=cold_ms, warm_ms=warm_ms,
                 cold_failures=sum(not r["ok"] for r in cold), warm_failures=sum(not r["ok"] for r in warm),
                 warm_starts=sum(r["warm"] for r in warm), per_service_cold=summary([r["ms"] for r in cold]),
                 per_service_warm=summary([r["ms"] for r in warm]),
                 errors=[r["err"] for r in cold + warm if not r["ok"]][:3])

    # -- figure 8: the disk the store takes for 20 venvs ----------------------
    def fig8_sets(self):
        """The requirement sets of ../shared/realworld/ and bench/fixtures/ (those with any), then variants
        that add or pin one package each: 20 in all."""
        base = []
        for d in (ROOT.parent / "shared" / "realworld", BENCH / "fixtures"):
            for p in sorted(d.glob("*.md")):
                for block in re.findall(r"```[a-z]* markpact:deps[^\n]*\n(.*?)```", p.read_text(), re.S):
                    reqs = sorted({ln.strip() for ln in block.splitlines() if ln.strip() and not ln.startswith("#")})
                    if reqs and reqs not in base:
                        base.append(reqs)
        sets = list(base)
        for i in range(40):
            if len(sets) >= 20:
                break
            b = base[i % len(base)]
            if i % 2 == 0:
                v = sorted(set(b) | {FIG8_ADD[(i // 2) % len(FIG8_ADD)]})
            else:  # pin one of its own packages
                pins = [p for p in FIG8_PIN if p.split("==")[0] in b] or FIG8_PIN
                pin = pins[(i // 2) % len(pins)]
                v = sorted({r for r in b if r != pin.split("==")[0]} | {pin})
            if v not in sets:
                sets.append(v)
        return sets[:20]

    def fig8(self):
        sets = self.fig8_sets()
        log("figure 8: disk of the store for %d venvs (shared files) vs the same venvs each on its own" % len(sets))
        # the store holds these venvs and their wheels only; each is pushed to a registry (figure 9c)
        reg = Registry(self.run, "fig8-registry") if self.want9c else None
        m = self.mount("fig8", seed=False, extra=registry_env(reg.url) if reg else None)
        keys, failed = [], []
        for reqs in sets:
            _, cp = m.cli(["cache", "prewarm"] + reqs, timeout=900, check=False)
            if cp.returncode != 0:
                failed.append({"set": reqs, "error": cp.stderr[-300:]})
                continue
            keys.append(cp.stdout.split()[0])
        m.cli(["cache", "gc"])  # the daemon measures the store after the builds
        _, st = m.cli(["cache", "stats", "--json"])
        stats = json.loads(st.stdout)
        store = m.cache / "store"
        alone = [int(subprocess.run(["du", "-s", "-B1", str(store / k)], capture_output=True, text=True,
                                    check=True).stdout.split()[0]) for k in keys]
        du_store = int(subprocess.run(["du", "-s", "-B1", str(store)], capture_output=True, text=True,
                                      check=True).stdout.split()[0])
        shared = int(subprocess.run("find %s -type f -links +1 | wc -l" % shlex.quote(str(store)), shell=True,
                                    capture_output=True, text=True).stdout.strip() or 0)
        if reg:
            try:
                self.fig9c(m, keys, reg)
            finally:
                reg.stop()
        self.unmount(m)
        self.fig("8", sets=sets, venvs=len(keys), failed=failed, store_disk_bytes=stats.get("disk_bytes"),
                 du_store_bytes=du_store, uv_cache_bytes=stats.get("uv_cache_bytes"),
                 independent_bytes=sum(alone), independent_each=alone, files_with_links=shared)

    # -- figure 9: venvs shared through a registry ------------------------
    def fig9(self):
        log("figure 9: host B's first start of fastapi+uvicorn pulled from a registry vs built there")
        reg = Registry(self.run, "fig9-registry")
        try:
            # host A builds and pushes
            a = self.mount("fig9", extra=registry_env(reg.url))
            key = a.key_of(FASTAPI_REQS)
            a.cli(["cache", "prewarm"] + FASTAPI_REQS, timeout=900)
            pushed = wait_pushed(a, 1)
            self.unmount(a)
            # Each side timed from a settled filesystem (settle_inodes: the hosts of a fleet do not share
            # one, and here the inodes one step freed would make the next one's allocations slower), one
            # side after the other: each needs a daemon of its own, and a second daemon meanwhile (its
            # measure of a store holding a copy of the warm uv cache) took CPU from the other side.
            # Host B: the same store path as A, a cache of its own (A's moved aside); each pull is a new
            # host B's first start: the last one's cache is moved aside, not removed.
            os.rename(self.run / "fig9", self.run / "fig9-hostA")
            reps = self.n(7, 3)
            pulls, builds, news = [], [], []
            for i in range(reps):
                b = self.mount("fig9", seed=False, extra=registry_env(reg.url))
                settle_inodes()
                dt, cp = b.cli(["cache", "prewarm"] + FASTAPI_REQS, timeout=900)
                log_text = (b.cache / "logs" / (key + ".log")).read_text()
                if "ready (pulled)" not in log_text:
                    raise RuntimeError("figure 9: host B did not pull:\n" + log_text[-1500:])
                pulls.append(dt * 1000)
                self.unmount(b)
                os.rename(self.run / "fig9", self.run / ("fig9-hostB%d" % i))
            # its cold build: host B without the registry, its store's uv cache warm (the first build, which
            # compiles the wheels' bytecode, untimed, as in figure 3), the venv removed before each
            w = self.mount("fig9-build")
            w.cli(["cache", "prewarm"] + FASTAPI_REQS, timeout=900)
            for i in range(reps):
                w.cli(["cache", "rm", key, "--force"], check=False)
                settle_inodes()
                dt, _ = w.cli(["cache", "prewarm"] + FASTAPI_REQS, timeout=900)
                builds.append(dt * 1000)
            self.unmount(w)
            # a new host: an empty uv cache, the local wheelhouse (no network)
            for i in range(self.n(3, 2)):
                n = self.mount("fig9-new%d" % i, seed=False, extra={"PACTOWN_FIND_LINKS": str(WHEELHOUSE),
                                                                      "PACTOWN_NO_INDEX": "yes", "PACTOWN_OFFLINE": "yes"})
                settle_inodes()
                dt, _ = n.cli(["cache", "prewarm"] + FASTAPI_REQS, timeout=900)
                news.append(dt * 1000)
                self.unmount(n)
            self.fig("9", pull=summary(pulls), build_warm=summary(builds), build_new_host=summary(news), key=key,
                     host_a_registry=pushed)
        finally:
            reg.stop()

    def fig9c(self, m, keys, reg):
        """figure 9c: registry bytes for figure 8's venvs vs one whole-venv archive each (tar + zstd -3)"""
        wait_pushed(m, len(keys))
        whole = []
        for k in keys:
            tar = subprocess.run(["tar", "-C", str(m.cache / "store"), "-cf", "-", k], capture_output=True, check=True)
            z = subprocess.run(["zstd", "-3", "-q", "-c"], input=tar.stdout, capture_output=True, check=True)
            whole.append(len(z.stdout))
        self.fig("9c", venvs=len(keys), registry_bytes=reg.blob_bytes(), whole_archives_bytes=sum(whole),
                 whole_each=whole, stats=json.loads((m.mnt / "stats").read_text()).get("registry"))

    # -- all -------------------------------------------------------------
    def main(self):
        t_start = time.perf_counter()
        only = set(self.a.only.split(",")) if self.a.only else None

        def want(f):
            return not only or f in only
        try:
            self.setup()
            if want("1") or want("2") or want("3") or want("5"):
                m = self.mount("main")
                self.fig3(m)
                if want("1"):
                    self.fig1(m)
                if want("2"):
                    self.fig2(m)
                if want("5"):
                    self.fig5(m)
                self.unmount(m)
            if want("4") or want("6"):
                self.fig4_6()
            if want("7"):
                self.fig7()
            self.want9c = want("9") and shutil.which("docker-registry") is not None
            if want("8") or self.want9c:
                self.fig8()
            if want("9"):
                if shutil.which("docker-registry"):
                    self.fig9()
                else:
                    self.note("figure 9: docker-registry is not installed (tools/setup installs it)")
        finally:
            for m in list(self.mounts):
                try:
                    m.stop()
                except Exception as e:
                    log("cleanup: %s" % e)
            if self.peer:
                self.peer.close()
            self.res["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
            self.res["wall_s"] = time.perf_counter() - t_start
            if not self.a.keep:
                subprocess.run(["chmod", "-R", "u+w", str(self.run)], capture_output=True)
                shutil.rmtree(self.run, ignore_errors=True)
            else:
                log("kept %s" % self.run)
        self.res["table"] = table_rows(self.res)
        out = Path(self.a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.res, indent=1) + "\n")
        print_table(self.res)
        log("raw figures in %s (%.0f s)" % (out, self.res["wall_s"]))


# ---------------------------------------------------------------- the table

def fmt(x, unit):
    if x is None:
        return "n/a"
    m = x["median"] if isinstance(x, dict) else x
    if unit == "ms":
        v = lambda y: ("%.0f" % y) if y >= 100 else ("%.1f" % y) if y >= 10 else ("%.2f" % y)  # noqa: E731
    else:
        v = lambda y: ("%.1f" % y) if y >= 10 else ("%.2f" % y)  # noqa: E731
    if isinstance(x, dict) and x["n"] > 1:
        return "%s %s [%s-%s]" % (v(m), unit, v(x["p25"]), v(x["p75"]))
    return "%s %s" % (v(m), unit)


def table_rows(res):
    F, P = res["figures"], res["peers"]
    rows = []

    def why(peer):
        p = P.get(peer, {})
        return None if p.get("ok") else "%s: %s" % (peer, (p.get("error") or "not installed")[:300])

    def row(num, what, ours, other, other_name, ratio, ratio_txt, target, met, missing=None):
        rows.append({"#": num, "figure": what, "pactown-fs": ours, "other": other, "other_name": other_name,
                     "ratio": ratio, "ratio_text": ratio_txt, "target": target,
                     "status": "n/a" if met is None else ("met" if met else "MISSED"), "missing": missing})

    def div(a, b):
        return a / b if a is not None and b else None

    def vs_uv(num, what, f, other_name, limit):
        r = div(med(f["ours"]), med(f["uv"]))
        row(num, what, fmt(f["ours"], "ms"), fmt(f["uv"], "ms"), other_name, r, r and "%.2fx uv's time" % r,
            "<= %.1fx uv" % limit, r and r <= limit, why("uv"))

    if "1" in F:
        f = F["1"]
        r = div(med(f["peer_pactown"]), med(f["ours"]))
        row("1", "sandbox ready, cache hit (fastapi+uvicorn)", fmt(f["ours"], "ms"), fmt(f["peer_pactown"], "ms"),
            "pactown fast_create_sandbox", r, r and "%.0fx faster" % r, ">= 100x faster", r and r >= 100,
            why("pactown"))
    if "1b" in F:
        f = F["1b"]
        r = div(med(f["uv"]), med(f["ours"]))
        row("1b", "sandbox ready, hit vs making the env with uv", fmt(f["ours"], "ms"), fmt(f["uv"], "ms"),
            "uv venv + uv pip install (warm cache)", r, r and "%.0fx faster" % r, ">= 10x faster", r and r >= 10,
            why("uv"))
    if "2" in F:
        f = F["2"]
        r = div(med(f["peer_pactown"]), med(f["ours"]))
        row("2", "run to healthy, cache hit", fmt(f["ours"], "ms"), fmt(f["peer_pactown"], "ms"),
            "pactown fast_run", r, r and "%.2fx faster" % r, "faster than pactown", r and r > 1, why("pactown"))
        r = div(med(f["ours"]), med(f["floor"]))
        row("2f", "run to healthy vs the floor", fmt(f["ours"], "ms"), fmt(f["floor"], "ms"),
            "uvicorn started directly from the built venv", r, r and "%.2fx the floor" % r, "<= 1.2x the floor",
            r and r <= 1.2)
    if "2w" in F:
        f = F["2w"]
        r = div(med(f["ours"]), med(f["floor"]))
        row("2w", "run to healthy on a hit, warm start, vs the floor", fmt(f["ours"], "ms"), fmt(f["floor"], "ms"),
            "uvicorn started directly from the built venv", r, r and "%.2fx the floor" % r, "<= 0.15x the floor",
            r and r <= 0.15)
    for name in ("flask", "streamlit"):
        if "2w-" + name in F:
            f = F["2w-" + name]
            r = div(med(f["ours"]), med(f["floor"]))
            row("2w'", "the same, a %s service" % name, fmt(f["ours"], "ms"), fmt(f["floor"], "ms"),
                "its run command started directly from the built venv", r, r and "%.2fx the floor" % r,
                "<= 0.3x the floor", r and r <= 0.3)
    if "3" in F:
        f = F["3"]
        vs_uv("3a", "cold build fastapi+uvicorn vs uv", f, "uv venv + uv pip install (warm cache)", 1.1)
        r = div(med(f["pip"]), med(f["ours"]))
        row("3b", "cold build fastapi+uvicorn vs pip", fmt(f["ours"], "ms"), fmt(f["pip"], "ms"),
            "python -m venv + pip install (local wheelhouse)", r, r and "%.1fx faster" % r, ">= 3x faster", r and r >= 3,
            why("pip") or (res["mode"] == "quick" and "pip: skipped in --quick") or None)
        r = div(med(f["ours"]), med(f["uv_compile_copy"]))
        row("3c", "cold build vs uv with bytecode, copied", fmt(f["ours"], "ms"), fmt(f["uv_compile_copy"], "ms"),
            "uv ... --compile-bytecode --link-mode copy", r, r and "%.2fx" % r, "(breakdown)", None, why("uv"))
    if "3d" in F:
        vs_uv("3d", "cold build of a second set (+ httpx) vs uv", F["3d"], "uv venv + uv pip install (warm cache)", 1.0)
    if "3e" in F:
        vs_uv("3e", "cold run to healthy (build + start) vs uv", F["3e"], "uv venv + uv pip install + uvicorn until 200",
              1.0)
    if "4" in F:
        f = F["4"]
        v = med(f["first_stat_us"])
        row("4a", "first lookup of a built key (stat by-deps/KEY)", fmt(f["first_stat_us"], "us"),
            fmt(f["first_lstat_us"], "us"), "lstat only (lookup, no readlink)", v, v and "%.0f us" % v,
            "< 100 us", v is not None and v < 100)
        if f.get("first_stat_fresh_atime_us"):
            v = med(f["first_stat_fresh_atime_us"])
            row("4a'", "  the same, access time fresh (no index write)", fmt(f["first_stat_fresh_atime_us"], "us"),
                "", "", v, "%.0f us" % v, "(breakdown)", None)
        r = div(med(f["repeat_stat_us"]), med(f["local_stat_us"]))
        row("4b", "repeated lookup (kernel-cached)", fmt(f["repeat_stat_us"], "us"), fmt(f["local_stat_us"], "us"),
            "stat of a local symlink to a local dir", r, r and "%.2fx local" % r, "<= 2x a local stat",
            r and r <= 2)
    if "5" in F:
        f = F["5"]
        r = div(med(f["ours"]), med(f["store"]))
        rc = div(med(f.get("ours_cpu_ms")), med(f.get("store_cpu_ms")))
        row("5", "python -c 'import fastapi' via sandbox .venv", fmt(f["ours"], "ms"), fmt(f["store"], "ms"),
            "the same from the store path", r, r and ("%.3fx" % r) + (" (CPU %.3fx)" % rc if rc else ""), "<= 1.05x",
            r and r <= 1.05)
    if "6" in F:
        f = F["6"]
        v = med(f["ls_ms"])
        row("6a", "ls by-deps, %s entries" % f.get("entries_listed"), fmt(f["ls_ms"], "ms"),
            fmt(f["local_ls_ms"], "ms"), "ls of a local dir of 10,000 symlinks", v,
            v and "%.1fx local" % (v / med(f["local_ls_ms"])), "< 50 ms", v is not None and v < 50)
        v = f["rss_max_mib"]
        row("6b", "daemon RSS at 10,000 entries (max seen)", "%.1f MiB" % v, "", "", v, "%.1f MiB" % v, "< 32 MiB",
            v < 32)
    if "7" in F:
        f = F["7"]
        o, p = f["ours"], f.get("peer_pactown")
        served = f["sandboxes"] - (o["builds"] or 0) - o["failures"]
        ours = "%.1f s: %s builds, %d without (%s hits, %d waited), %d failed" % (
            o["total_ms"] / 1000, o["builds"], served, o["hits"], served - (o["hits"] or 0), o["failures"])
        other = ("%.1f s: %d builds, %d hits, %d failed" % (p["total_ms"] / 1000, p["builds"], p["hits"],
                                                             p["failures"])) if p else "n/a"
        r = div(p and p["total_ms"], o["total_ms"])
        ok = (o["builds"] == f["sets"] and o["failures"] == 0 and r > 1) if r else None
        row("7", "%d sandboxes, %d sets, 4 at a time" % (f["sandboxes"], f["sets"]), ours, other,
            "pactown fast_create_sandbox, 4 at a time", r, r and "%.1fx faster" % r,
            "%d builds, %d without; faster" % (f["sets"], f["sandboxes"] - f["sets"]), ok,
            why("pactown") or (f.get("peer_skipped") and "pactown: " + f["peer_skipped"]))
    if "7w" in F:
        f = F["7w"]
        r = div(f["warm_ms"], f["cold_ms"])
        row("7w", "%d services over 5 sets, 4 at a time, warm" % f["services"],
            "%.1f s (%d warm, %d failed)" % (f["warm_ms"] / 1000, f["warm_starts"], f["warm_failures"]),
            "%.1f s (%d failed)" % (f["cold_ms"] / 1000, f["cold_failures"]), "the same, cold", r,
            r and "%.2fx" % r, "<= 0.3x", r and r <= 0.3 and not f["warm_failures"] and not f["cold_failures"])
    if "8" in F:
        f = F["8"]
        d, ind = f.get("store_disk_bytes"), f.get("independent_bytes")
        r = div(d, ind)
        row("8", "disk of the store, %d venvs (figure 8's mix)" % f["venvs"], d and "%.0f MiB" % (d / 2**20),
            ind and "%.0f MiB" % (ind / 2**20), "the same venvs, each on its own (du -s of each)", r,
            r and "%.2fx" % r, "<= 0.4x", r and r <= 0.4 and f["venvs"] == 20,
            f["failed"] and "%d sets failed to build: %s" % (len(f["failed"]), f["failed"][0]["error"][-200:]))
    if "9" in F:
        f = F["9"]
        r = div(med(f["build_warm"]), med(f["pull"]))
        row("9a", "host B's first start of fastapi+uvicorn: pull vs its cold build", fmt(f["pull"], "ms"),
            fmt(f["build_warm"], "ms"), "a cold build on host B (warm wheel cache)", r, r and "%.1fx faster" % r,
            ">= 2x faster", r and r >= 2)
        r = div(med(f["build_new_host"]), med(f["pull"]))
        row("9b", "the same vs a cold build on a new host", fmt(f["pull"], "ms"), fmt(f["build_new_host"], "ms"),
            "a cold build, empty uv cache, local wheelhouse", r, r and "%.1fx faster" % r, ">= 5x faster",
            r and r >= 5)
    if "9c" in F:
        f = F["9c"]
        r = div(f["registry_bytes"], f["whole_archives_bytes"])
        row("9c", "registry bytes, %d venvs of figure 8's mix" % f["venvs"], "%.0f MiB" % (f["registry_bytes"] / 2**20),
            "%.0f MiB" % (f["whole_archives_bytes"] / 2**20), "one tar+zstd archive per venv", r, r and "%.2fx" % r,
            "<= 0.5x", r and r <= 0.5 and f["venvs"] == 20)
    return rows


def print_table(res):
    rows = res["table"]
    hdr = ["#", "figure", "pactown-fs", "other side", "ratio", "target", "status"]
    data = [[r["#"], r["figure"], r["pactown-fs"], r["other"] or "", r["ratio_text"] or "n/a", r["target"], r["status"]]
            for r in rows]
    w = [max(len(str(x)) for x in col) for col in zip(hdr, *data)]
    line = "  ".join("%-*s" % (w[i], h) for i, h in enumerate(hdr))
    print(line)
    print("-" * len(line))
    for d in data:
        print("  ".join("%-*s" % (w[i], x) for i, x in enumerate(d)).rstrip())
    print("other side: " + "; ".join("%s %s" % (r["#"], r["other_name"]) for r in rows if r["other_name"]))
    for r in rows:
        if r["missing"]:
            print("%s: n/a because %s" % (r["#"], r["missing"]))
    print("medians [interquartile range]; mode %s; %s, %s CPUs, load %s -> %s" % (
        res["mode"], res["machine"].get("cpu"), res["machine"].get("nproc"),
        " ".join(res["machine"].get("loadavg_start", [])), " ".join(res["machine"].get("loadavg_end", []))))
    for n in res["notes"]:
        print("note: %s" % n)


def markdown_table(res):
    out = ["| # | figure | pactown-fs | other side | ratio | target | status |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in res["table"]:
        other = r["other"] + (" (%s)" % r["other_name"] if r["other_name"] and r["other"] else "")
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            r["#"], r["figure"].strip(), r["pactown-fs"], other or "", r["ratio_text"] or "n/a",
            r["target"], "**MISSED**" if r["status"] == "MISSED" else r["status"]))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(prog="tools/bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer repetitions, no pip baseline, 20 sandboxes in figure 7 without the peer")
    ap.add_argument("--out", default=str(BENCH / "results.json"), help="raw figures (JSON); default bench/results.json")
    ap.add_argument("--only", help="comma-separated figures to run (1,2,3,4,5,6,7,8); 1, 2 and 5 also run 3 "
                    "(which has 3a-3e)")
    ap.add_argument("--no-peer", action="store_true", help="skip the pactown peer")
    ap.add_argument("--peer-version", default=PEER_VERSION, help="pactown version from PyPI ('' for the newest)")
    ap.add_argument("--keep", action="store_true", help="keep the run directory under /tmp")
    ap.add_argument("--report", metavar="JSON", help="print the table of an earlier run (text and Markdown); run nothing")
    a = ap.parse_args()
    if a.report:
        res = json.loads(Path(a.report).read_text())
        res["table"] = table_rows(res)
        print_table(res)
        print()
        print(markdown_table(res))
        return
    if os.geteuid() != 0:
        sys.exit("tools/bench: run as root (pactownfs mounts with allow_other and a read-only store bind)")
    if not os.path.exists("/dev/fuse"):
        sys.exit("tools/bench: no /dev/fuse on this machine")
    suite = Suite(a)

    def on_term(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    suite.main()


if __name__ == "__main__":
    main()
