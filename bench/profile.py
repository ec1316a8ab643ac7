#!/usr/bin/env python3
"""profile.py — the measurements behind the "why" of docs/BENCHMARKS.md.

Run after tools/bench (which builds the helpers and warms the caches):

    python3 bench/profile.py [--reps N] [--out bench/profile.json]

  build     where a cold build's time goes: uv with pactown's flags one at a
            time (--link-mode copy, --compile-bytecode), and the builder's steps
  startup   what a `pactown` process costs before it does anything: the CLI
            against a do-nothing C program linked with the same libraries,
            with and without libcurl; strace -c of `pactown run --prepare` on a hit
  health    run to healthy: the floor, the floor while another process reads
            /proc/net/tcp{,6} every 20 ms (what pactown's health wait does), and
            pactown run; the CPU time of the CLI process itself
  import    requests the daemon gets while Python imports fastapi through a
            sandbox's .venv (none: the kernel caches the entry and the link)
  lookup    first stat of by-deps/KEY when the entry's access time is stale
            (the daemon writes it: an LMDB commit) and when it is fresh (no
            write); strace -c -f of the daemon during each pass
Samples are interleaved like tools/bench; medians and interquartile ranges.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
from bench import summary, timed, log  # noqa: E402


def strace_c(path):
    """Parse strace -c output: {syscall: (calls, seconds)}."""
    out = {}
    for line in Path(path).read_text().splitlines():
        f = line.split()
        if len(f) >= 5 and re.match(r"^[0-9.]+$", f[0]) and f[-1] not in ("total",):
            calls = int(f[3])
            out[f[-1]] = {"calls": calls, "seconds": float(f[1])}
    return out


def p_build(reps, uv, py, run):
    log("build: uv variants, interleaved, %d reps" % reps)
    env = bench.venv_env({"UV_CACHE_DIR": str(bench.UV_CACHE)})
    variants = {"uv (default: hardlink, no bytecode)": [], "uv --link-mode copy": ["--link-mode", "copy"],
                "uv --compile-bytecode": ["--compile-bytecode"],
                "uv --compile-bytecode --link-mode copy (pactown's)": ["--compile-bytecode", "--link-mode", "copy"]}
    res = {k: [] for k in variants}
    venv_ms, chmod_ms, sync_ms = [], [], []
    for _ in range(reps):
        for k, extra in variants.items():
            d = run / "v"
            subprocess.run(["chmod", "-R", "u+w", str(d)], capture_output=True)
            shutil.rmtree(d, ignore_errors=True)
            t0 = time.perf_counter()
            timed([uv, "venv", "-q", "--python", py, str(d)], env=env)
            t1 = time.perf_counter()
            timed([uv, "pip", "install", "-q", "--python", str(d / "bin" / "python")] + extra + bench.FASTAPI_REQS,
                  env=env)
            t2 = time.perf_counter()
            res[k].append((t2 - t0) * 1000)
            venv_ms.append((t1 - t0) * 1000)
            if "pactown" in k:  # the builder's last steps: chmod a-w, syncfs
                timed(["chmod", "-R", "a-w", str(d)])
                t3 = time.perf_counter()
                fd = os.open(str(d), os.O_RDONLY | os.O_DIRECTORY)
                os.syncfs(fd) if hasattr(os, "syncfs") else subprocess.run(["sync", "-f", str(d)])
                os.close(fd)
                t4 = time.perf_counter()
                chmod_ms.append((t3 - t2) * 1000)
                sync_ms.append((t4 - t3) * 1000)
    out = {k: summary(v) for k, v in res.items()}
    out["uv venv step"] = summary(venv_ms)
    out["chmod -R a-w"] = summary(chmod_ms)
    out["syncfs"] = summary(sync_ms)
    # the daemon's own build, step by step (its log says what each step took)
    m = bench.Mount(run, "build", uv)
    m.start()
    try:
        key = m.key_of(bench.FASTAPI_REQS)
        walls, steps = [], []
        for i in range(max(2, reps // 2)):
            if i:
                m.cli(["cache", "rm", key, "--force"])
            dt, _ = m.cli(["run", str(bench.FIXTURE), "--prepare", "--service-id", "b"], timeout=900)
            walls.append(dt * 1000)
            text = (m.cache / "logs" / (key + ".log")).read_text()
            steps.append({"log": re.findall(r"pactown-build: (.*) took ([0-9.]+) s", text),
                          "ready_ms": int(re.search(r"ready in (\d+) ms", text).group(1))})
        out["pactown run --prepare (cold)"] = summary(walls)
        out["daemon build log"] = steps
    finally:
        m.stop()
    return out


def p_startup(reps, run):
    log("startup: process start of the CLI, with and without libcurl")
    src = run / "nothing.c"
    src.write_text("int main(void) { return 0; }\n")
    libs = ["-llmdb", "-lxxhash", "-linih", "-ljansson", "-lpthread"]
    timed(["cc", "-o", str(run / "nothing-nocurl"), str(src), "-Wl,--no-as-needed"] + libs)
    timed(["cc", "-o", str(run / "nothing-curl"), str(src), "-Wl,--no-as-needed"] + libs + ["-lcurl"])
    cases = {"pactown --help": [str(bench.PACTOWN), "--help"],
             "empty main, pactown's libraries without libcurl": [str(run / "nothing-nocurl")],
             "empty main, pactown's libraries with libcurl": [str(run / "nothing-curl")],
             "/bin/true": ["/bin/true"]}
    res = {k: [] for k in cases}
    for _ in range(reps * 5):
        for k, argv in cases.items():
            res[k].append(timed(argv)[0] * 1000)
    out = {k: summary(v) for k, v in res.items()}
    ldd = subprocess.run(["ldd", str(bench.PACTOWN)], capture_output=True, text=True).stdout
    out["shared libraries of pactown"] = len(ldd.splitlines())
    return out


def p_hit_strace(uv, run):
    log("startup: strace -c of pactown run --prepare on a hit")
    m = bench.Mount(run, "hit", uv)
    m.start()
    try:
        m.cli(["run", str(bench.FIXTURE), "--prepare", "--service-id", "h"], timeout=900)
        st = run / "hit.strace"
        subprocess.run(["strace", "-f", "-c", "-o", str(st), str(bench.PACTOWN), "run", str(bench.FIXTURE),
                        "--prepare", "--service-id", "h"], env=m.env, capture_output=True)
        walls, selfr = [], []
        for _ in range(20):
            dt, cp = m.cli(["run", str(bench.FIXTURE), "--prepare", "--service-id", "h"])
            walls.append(dt * 1000)
            selfr.append(float(re.search(r"sandbox ready in ([0-9.]+) ms", cp.stderr).group(1)))
        calls = strace_c(st)
        return {"syscalls (calls)": {k: v["calls"] for k, v in sorted(calls.items(), key=lambda kv: -kv[1]["calls"])},
                "wall_ms": summary(walls), "self_reported_ms": summary(selfr)}
    finally:
        m.stop()


def p_import(uv, run):
    log("import: what the daemon sees while Python imports fastapi through the sandbox's .venv")
    m = bench.Mount(run, "import", uv)
    m.start()
    try:
        venv = m.cli(["run", str(bench.FIXTURE), "--prepare", "--service-id", "i"], timeout=900)[1].stdout.strip()
        sb = m.sandboxes / "i"
        env = bench.venv_env()
        a = [str(sb / ".venv" / "bin" / "python"), "-c", "import fastapi"]
        b = [venv + "/bin/python", "-c", "import fastapi"]
        for argv in (a, b):
            timed(argv, cwd=sb, env=env)
        st = run / "daemon-import.strace"
        tr = subprocess.Popen(["strace", "-f", "-c", "-o", str(st), "-p", str(m.proc.pid)], stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        for _ in range(5):
            timed(a, cwd=sb, env=env)
        tr.send_signal(2)
        tr.wait()
        out = {"daemon syscalls during 5 imports via .venv": sum(v["calls"] for v in strace_c(st).values())}
        for label, argv in (("via .venv", a), ("via the store path", b)):
            pst = run / "py.strace"
            subprocess.run(["strace", "-f", "-c", "-o", str(pst)] + argv, cwd=sb, env=env, capture_output=True)
            c = strace_c(pst)
            out["python syscalls, %s" % label] = sum(v["calls"] for v in c.values())
        return out
    finally:
        m.stop()


POLLER = """
import time
while True:
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(f) as fh:
            fh.read()
    time.sleep(0.02)
"""


def p_health(reps, uv, run):
    log("health: run to healthy: floor, floor + a /proc/net/tcp reader every 20 ms, pactown run; %d reps" % reps)
    cost = {}
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        t0 = time.perf_counter()
        for _ in range(50):
            with open(f) as fh:
                fh.read()
        cost["read %s (ms)" % f] = (time.perf_counter() - t0) / 50 * 1000
    m = bench.Mount(run, "health", uv)
    m.start()
    try:
        s = bench.Suite.__new__(bench.Suite)
        s.fixture = bench.FIXTURE.read_text()
        s.venv = m.cli(["run", str(bench.FIXTURE), "--prepare", "--service-id", "h"], timeout=900)[1].stdout.strip()
        sb = run / "health-floor"
        sb.mkdir()
        shutil.copy(m.sandboxes / "h" / "app.py", sb / "app.py")
        s.floor_start(sb, bench.free_port())
        floor, polled, ours, ours_cpu = [], [], [], []
        import resource
        for i in range(reps):
            floor.append(s.floor_start(sb, bench.free_port()))
            p = subprocess.Popen([sys.executable, "-c", POLLER])
            time.sleep(0.05)
            polled.append(s.floor_start(sb, bench.free_port()))
            p.kill()
            p.wait()
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            dt, _ = m.cli(["run", str(bench.FIXTURE), "--detach", "--service-id", "h%d" % i, "--port",
                           str(bench.free_port())])
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            ours.append(dt * 1000)
            ours_cpu.append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
            m.cli(["stop", "h%d" % i])
        out = dict(cost)
        out["floor (ms)"] = summary(floor)
        out["floor + /proc/net/tcp reader every 20 ms (ms)"] = summary(polled)
        out["pactown run --detach (ms)"] = summary(ours)
        out["CPU of the pactown CLI process during that run (ms)"] = summary(ours_cpu)
        return out
    finally:
        m.stop()


def p_lookup(n, uv, run, statbench, mkentries):
    log("lookup: first stat with stale vs fresh access times, %d keys each" % n)
    m = bench.Mount(run, "lookup", uv)
    stale = subprocess.run([str(mkentries), str(m.cache), str(n), "3600", "stale"], capture_output=True, text=True,
                           check=True).stdout.split()
    fresh = subprocess.run([str(mkentries), str(m.cache), str(n), "0", "fresh"], capture_output=True, text=True,
                           check=True).stdout.split()
    m.start()
    out = {}
    try:
        by = m.mnt / "by-deps"
        half = n // 2
        # interleave: stale, fresh, stale, fresh (halves), timing only
        for label, keys in (("stale", stale[:half]), ("fresh", fresh[:half])):
            lst = run / ("k-%s.txt" % label)
            lst.write_text("".join("%s/%s\n" % (by, k) for k in keys))
            _, cp = timed([str(statbench), "each", "stat", str(lst)])
            out["first stat, %s access time (us)" % label] = summary([int(x) / 1000 for x in cp.stdout.split()])
        # the other halves under strace of the daemon: what it does per lookup
        for label, keys in (("stale", stale[half:]), ("fresh", fresh[half:])):
            lst = run / ("k2-%s.txt" % label)
            lst.write_text("".join("%s/%s\n" % (by, k) for k in keys))
            st = run / ("daemon-%s.strace" % label)
            tr = subprocess.Popen(["strace", "-f", "-c", "-o", str(st), "-p", str(m.proc.pid)],
                                  stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            timed([str(statbench), "each", "stat", str(lst)])
            tr.send_signal(2)
            tr.wait()
            calls = strace_c(st)
            out["daemon syscalls per first stat, %s" % label] = {
                k: round(v["calls"] / len(keys), 2) for k, v in sorted(calls.items(), key=lambda kv: -kv[1]["seconds"])
                if v["calls"] >= len(keys) // 2}
            out["daemon fdatasync+fsync seconds, %s (%d stats)" % (label, len(keys))] = sum(
                calls.get(s, {}).get("seconds", 0) for s in ("fdatasync", "fsync"))
    finally:
        m.stop()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--lookups", type=int, default=1000)
    ap.add_argument("--only", help="comma-separated: build,startup,health,import,lookup")
    ap.add_argument("--out", default=str(bench.BENCH / "profile.json"))
    a = ap.parse_args()
    only = set(a.only.split(",")) if a.only else {"build", "startup", "health", "import", "lookup"}
    uv, py = bench.find_uv(), bench.real_python()
    mkentries, statbench = bench.build_helpers()
    run = Path(tempfile.mkdtemp(prefix="pactown-profile."))
    res = {"machine": bench.machine_info()}
    try:
        bench.warm_caches(uv, py, run)
        if "build" in only:
            res["build"] = p_build(a.reps, uv, py, run)
        if "startup" in only:
            res["startup"] = p_startup(a.reps, run)
            res["hit"] = p_hit_strace(uv, run)
        if "health" in only:
            res["health"] = p_health(a.reps * 2, uv, run)
        if "import" in only:
            res["import"] = p_import(uv, run)
        if "lookup" in only:
            res["lookup"] = p_lookup(a.lookups, uv, run, statbench, mkentries)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(run)], capture_output=True)
        shutil.rmtree(run, ignore_errors=True)
    res["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")

    def show(d, indent=""):
        for k, v in d.items():
            if isinstance(v, dict) and "median" in v:
                print("%s%-58s %10.2f  [%.2f-%.2f] n=%d" % (indent, k, v["median"], v["p25"], v["p75"], v["n"]))
            elif isinstance(v, dict):
                print("%s%s:" % (indent, k))
                show(v, indent + "  ")
            else:
                print("%s%-58s %s" % (indent, k, v))
    show({k: v for k, v in res.items() if k != "machine"})
    log("raw figures in %s" % a.out)


if __name__ == "__main__":
    main()
