# zygote.py — the warm process of one venv and uid (docs/WARM.md).
#
# Run by pactown as `<venv>/bin/python <cache>/warm/zygote-<hash>.py DIR
# IDLE_SECONDS` with a bound socket (AF_UNIX, SOCK_SEQPACKET) as its stdin,
# as the services' uid, cwd DIR (the zygote's own directory), no threads.
# It forks once (its first process exits: pactown does not reap it), writes
# DIR/pid, imports DIR/preload (one module per line; "@auto": the top-level
# modules of the venv's distributions), then listen(2)s: a connection is
# only ever accepted once it is ready. Then it forks one child per start. The child
# becomes the service: its session, its descriptors, its environment, cwd,
# sys.argv, sys.path[0] and a fresh __main__, then runs the file, module or
# console script at this file's top level, so that it ends as a cold start
# of the interpreter would (SystemExit, a traceback, atexit, threads joined).
#
# Protocol, one connection per start (pactown/warm.h):
#   -> {"v":1,"kind":"file"|"module"|"script","target":..,"exe":..,
#       "argv":[..],"orig_argv":[..],"path0":..,"cwd":..,"env":["K=V",..]}
#      with SCM_RIGHTS [stdin, stdout, stderr, go]
#   <- {"pid": N} or {"error": "..."}
#   (the child waits for one byte "g" on go: pactown moves it into the
#    service's cgroups first; EOF instead: the child exits)
#   <- {"exit": WAIT_STATUS} when the child is reaped
# or, for a service's health wait (pactown/warm.h, pt_warm_probe):
#   -> {"v":1,"kind":"probe"}, no descriptors: the connection is handed to
#      the prober (a process forked once, on the first such connection, that
#      may have threads: nothing is forked from it), which then answers
#   -> {"host":..,"port":N,"path":"/..","timeout_ms":N}  (as many as asked)
#   <- {"status": N} or {"error": "ECONNREFUSED"|"ETIMEDOUT"|"EIO"}
import sys

AT_START = set(sys.modules)  # what any interpreter has imported before its first line
import os  # noqa: E402

ZYGOTE_FILE = sys.argv[0]
del sys.path[0]  # this file's directory: never a place to import from
RECORD_SECONDS = 10  # a child names the modules it imports in its first seconds (DIR/seen)


def log(msg):
    sys.stderr.write("pactown-warm[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()


def threads():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


STARTUP_VARS = ("PYTHON", "LANG", "LC_", "TZ")


def auto_modules():
    """The top-level modules of the venv's distributions (their RECORD files):
    packages and modules, not private ones (_x), not the dist-info."""
    import sysconfig
    site = sysconfig.get_paths()["purelib"]
    names = set()
    try:
        entries = os.listdir(site)
    except OSError:
        return []
    for e in sorted(entries):
        if not e.endswith(".dist-info"):
            continue
        try:
            with open(os.path.join(site, e, "RECORD")) as f:
                for line in f:
                    path = line.split(",", 1)[0]
                    top = path.split("/", 1)[0]
                    if "/" in path and (path.endswith("/__init__.py") and path.count("/") == 1):
                        names.add(top)
                    elif "/" not in path and path.endswith(".py"):
                        names.add(path[:-3])
                    elif "/" not in path and path.endswith(".so"):
                        names.add(path.split(".", 1)[0])
        except OSError:
            continue
    return sorted(n for n in names if n.isidentifier() and not n.startswith("_"))


READS = {}  # variable -> (its value here, or None), for every variable a preloaded module read
CWD_REFS = []  # (module, name) of module-level strings made from this process's cwd (cwd_refs)


def preload(d, names=None):
    """Import the modules of DIR/preload, one at a time. One that fails to
    import is skipped; one that starts a thread while imported stops the
    preload: it is named in DIR/dropped and the log, and pactown starts the
    warm process again without it. The variables read while importing are
    kept (READS): a start whose environment differs in one of them is
    refused, and goes cold."""
    if names is None:
        try:
            with open(os.path.join(d, "preload")) as f:
                names = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
        except FileNotFoundError:
            names = []
        if "@auto" in names:
            names = [n for n in names if n != "@auto"] + auto_modules()
        try:  # what earlier children imported in their first seconds
            with open(os.path.join(d, "seen")) as f:
                names += [ln.strip() for ln in f if ln.strip()]
        except FileNotFoundError:
            pass
    try:
        with open(os.path.join(d, "dropped")) as f:
            drop = {ln.split("\t", 1)[0] for ln in f}
    except FileNotFoundError:
        drop = set()
    seen = []
    env_class = type(os.environ)

    class Recording(env_class):
        def __getitem__(self, k):
            if not str(k).startswith(STARTUP_VARS):
                seen.append(k)
            return env_class.__getitem__(self, k)

        def __iter__(self):
            seen.append("(the whole environment)")
            return env_class.__iter__(self)

    loaded = []
    for name in names:
        if name in drop or name in sys.modules:
            continue
        if not all(p.isidentifier() for p in name.split(".")):
            log("preload: %r is not a module name: skipped" % name)
            continue
        del seen[:]
        os.environ.__class__ = Recording
        try:
            __import__(name)
        except BaseException as e:  # SystemExit too: a module that exits on import is not preloaded
            log("preload: %s does not import cleanly (%s: %s): skipped" % (name, type(e).__name__, e))
            continue
        finally:
            os.environ.__class__ = env_class
        if threads() > 1:
            return loaded, (name, "it started a thread while imported")
        new = sorted({str(k) for k in seen if not isinstance(k, bytes)} - set(READS) - {"(the whole environment)"})
        for k in new:
            READS[k] = os.environ.get(k)
        if "(the whole environment)" in seen:
            return loaded, (name, "it read the whole environment while imported")
        if new:
            log("preload: %s read %s while imported: a start whose environment differs there is cold"
                % (name, ", ".join(new)))
        loaded.append(name)
    return loaded, None


def learn(d, tried):
    """Import the modules children named in DIR/seen (they imported them in
    their first seconds) that are not imported yet, as preload does. Returns
    a reason to exit when one started a thread (DIR/dropped names it)."""
    try:
        st = os.stat(os.path.join(d, "seen"))
        if CACHE.get("seen") == (st.st_size, st.st_mtime_ns):
            return None  # nothing named since the last look
        CACHE["seen"] = (st.st_size, st.st_mtime_ns)
        with open(os.path.join(d, "seen")) as f:
            names = [ln.strip() for ln in f]
    except OSError:
        return None
    loaded, dropped = preload(d, [n for n in names if n and n not in tried and n not in sys.modules])
    tried.update(names)
    if dropped:
        with open(os.path.join(d, "dropped"), "a") as f:
            f.write("%s\t%s\n" % dropped)
        return "%s: %s" % dropped
    if loaded:
        with open(os.path.join(d, "preloaded"), "a") as f:
            f.write("".join(n + "\n" for n in loaded))
        CWD_REFS[:] = cwd_refs(d)
    return None


CACHE = {}  # what the per-start checks compute from sys.modules, kept while it has not grown


def preloaded_tops():
    """the top-level names of the modules imported here, not at an interpreter's start"""
    if CACHE.get("tops_n") != len(sys.modules):
        CACHE["tops"] = {n.split(".", 1)[0] for n in sys.modules} - {n.split(".", 1)[0] for n in AT_START}
        CACHE["tops_n"] = len(sys.modules)
    return CACHE["tops"]


def known(tried):
    """the modules a child does not name in DIR/seen: imported here, or named there already (the
    child grows its own: it is forked)"""
    if CACHE.get("known_n") != (len(sys.modules), len(tried)):
        CACHE["known"] = set(sys.modules) | tried
        CACHE["known_n"] = (len(sys.modules), len(tried))
    return CACHE["known"]


def shadowed(path0):
    """A module imported here (not at an interpreter's start) that path0, the
    child's sys.path[0], also holds: a cold start would import path0's, a
    warm child has this one. None when there is none."""
    names = preloaded_tops()
    try:
        entries = os.listdir(path0)
    except OSError:
        return None
    for e in entries:
        base, dot, ext = e.partition(".")
        if base not in names:
            continue
        p = os.path.join(path0, e)
        if (dot and (ext == "py" or ext == "pyc" or ext.endswith(".so") or ext == "so")) or (
                not dot and os.path.isfile(os.path.join(p, "__init__.py"))):
            return e
    return None


def cwd_refs(d):
    """(module, name, what) of every module-level string (or bytes) a
    preloaded module made while imported from this process's cwd (DIR: what
    "cwd", such as multiprocessing.process.ORIGINAL_DIR) or its
    sys.executable (what "exe", such as multiprocessing.spawn's): the child
    puts its own there, as a cold start, importing them in the sandbox with
    its interpreter, would have."""
    refs = []
    prefix = d.rstrip("/") + "/"
    exe = sys.executable
    me = sys.modules["__main__"]
    for name, m in list(sys.modules.items()):
        if m is None or m is me:  # this file's own globals (also __mp_main__, multiprocessing's alias of it)
            continue
        try:
            items = list(vars(m).items())
        except TypeError:
            continue
        for k, v in items:
            if isinstance(v, bytes):
                try:
                    v = os.fsdecode(v)
                except (UnicodeError, TypeError):
                    continue
            if not isinstance(v, str):
                continue
            if v == d or v.startswith(prefix):
                refs.append((name, k, "cwd"))
            elif v == exe:
                refs.append((name, k, "exe"))
    return refs


def env_differs(env):
    """the first variable a preloaded module read that env has otherwise, or None"""
    for k, v in READS.items():
        if env.get(k) != v:
            return k
    return None


def recv_start(conn):
    import array
    import socket
    fds = array.array("i")
    msg, anc, flags, _ = conn.recvmsg(1 << 20, socket.CMSG_SPACE(16 * fds.itemsize))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    fds = list(fds)
    if not fds and not flags & socket.MSG_TRUNC and msg == b'{"v":1,"kind":"probe"}':
        return {"kind": "probe"}, []
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(fds) != 4:
        for fd in fds:
            os.close(fd)
        raise ValueError("a start message of another shape (%d descriptors)" % len(fds))
    import json
    req = json.loads(msg)
    for k in ("kind", "target", "exe", "argv", "orig_argv", "path0", "cwd", "env"):
        if k not in req:
            for fd in fds:
                os.close(fd)
            raise ValueError("a start message without %r" % k)
    if req["kind"] not in ("file", "module", "script"):
        for fd in fds:
            os.close(fd)
        raise ValueError("kind %r" % req["kind"])
    return req, fds


def send(conn, obj):
    import json
    try:
        conn.send(json.dumps(obj).encode())
    except OSError:
        pass


def http_get(host, port, path, timeout):
    """One GET as pactown's libcurl probe sends it (pt_http_probe): no
    proxy, no redirect followed, the whole answer within timeout seconds."""
    import http.client
    import socket
    import time
    deadline = time.monotonic() + timeout

    def left():
        t = deadline - time.monotonic()
        if t <= 0:
            raise TimeoutError
        return t
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.connect()
        sock = c.sock  # the response reads it too, after the connection lets it go (will_close)
        sock.settimeout(left())
        c.request("GET", path, headers={"User-Agent": "pactown"})
        sock.settimeout(left())
        r = c.getresponse()
        while True:
            sock.settimeout(left())
            if not r.read1(65536):
                break
        return {"status": r.status}
    except ConnectionRefusedError:
        return {"error": "ECONNREFUSED"}
    except (socket.timeout, TimeoutError):
        return {"error": "ETIMEDOUT"}
    except (http.client.HTTPException, OSError, ValueError, UnicodeError):
        return {"error": "EIO"}
    finally:
        c.close()


def probe_answer(conn):
    """A prober's thread: the requests of one health wait, one at a time."""
    import json
    conn.setblocking(True)  # the zygote's timeout left the shared file description O_NONBLOCK
    with conn:
        while True:
            try:
                msg = conn.recv(4096)
            except OSError:
                return
            if not msg:
                return
            try:
                rq = json.loads(msg)
                host, port, path, ms = rq["host"], rq["port"], rq["path"], rq["timeout_ms"]
                ok = (isinstance(host, str) and isinstance(port, int) and 0 < port < 65536 and isinstance(path, str)
                      and path.startswith("/") and all(0x20 < ord(ch) < 0x7f for ch in path)
                      and isinstance(ms, int) and 0 < ms <= 600000)
            except (ValueError, KeyError, TypeError):
                ok = False
            ans = http_get(host, port, path, ms / 1000.0) if ok else {"error": "a request of another shape"}
            try:
                conn.send(json.dumps(ans).encode())
            except OSError:
                return


def prober_main(chan):
    """The prober: takes the connections the zygote hands it on chan, a
    thread each, until chan ends (the zygote exited or exec'd)."""
    import array
    import socket
    import threading
    while True:
        fds = array.array("i")
        try:
            msg, anc, _, _ = chan.recvmsg(16, socket.CMSG_SPACE(fds.itemsize))
        except InterruptedError:
            continue
        except OSError:
            os._exit(0)
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        if not msg and not fds:
            os._exit(0)
        for fd in fds:
            threading.Thread(target=probe_answer, args=(socket.socket(fileno=fd),), daemon=True).start()


PROBER = {}  # "pid", "chan": the prober process and the zygote's end of its channel


def to_prober(conn, close_in_child):
    """Hand conn to the prober, forked first when there is none. False when
    it cannot take it (the start's probes are then sent by pactown)."""
    import signal
    import socket
    for attempt in (0, 1):
        if "chan" not in PROBER:
            if threads() > 1:  # never: this process has none; but a fork keeps only the forking one
                return False
            try:
                mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            except OSError as e:
                log("prober: no socket pair (%s)" % e)
                return False
            try:
                pid = os.fork()
            except OSError as e:
                log("prober: cannot fork (%s)" % e)
                mine.close()
                theirs.close()
                return False
            if pid == 0:
                try:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    mine.close()
                    for c in close_in_child:
                        try:
                            c.close()
                        except (OSError, AttributeError):
                            os.close(c)
                    prober_main(theirs)
                finally:
                    os._exit(1)  # never the zygote's code, nor an interpreter's shutdown (atexit), in the prober
            theirs.close()
            mine.settimeout(0.5)  # a prober that does not take its connections (stopped, stuck) is replaced
            PROBER.update(pid=pid, chan=mine)
            log("prober: pid %d" % pid)
        try:
            PROBER["chan"].sendmsg([b"c"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array_of(conn.fileno()))])
            return True
        except OSError as e:
            log("prober: it did not take a connection (%s): ending it, starting another" % e)
            PROBER.pop("chan").close()
            try:
                os.kill(PROBER.pop("pid"), signal.SIGKILL)  # reaped by the loop, as any child
            except (KeyError, OSError):
                pass
    return False


def array_of(fd):
    import array
    return array.array("i", [fd])


def serve(lsock, d, idle):
    """The zygote's loop: returns (in a forked child only) the start to run."""
    import json
    import select
    import signal
    import socket
    import time
    waiters = {}  # child pid -> the connection to tell its exit
    tried = set()  # names of DIR/seen looked at
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)  # SIGCHLD wakes the select (both restored in the child)
    signal.signal(signal.SIGCHLD, lambda s, f: None)
    last = time.monotonic()
    while True:
        # reap
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == PROBER.get("pid"):
                log("prober: pid %d ended (status %d)" % (pid, status))
                PROBER.pop("pid")
                PROBER.pop("chan").close()
            conn = waiters.pop(pid, None)
            if conn is not None:
                send(conn, {"exit": status})
                conn.close()
            last = time.monotonic()
        if not waiters and time.monotonic() - last > idle:
            log("idle for %d s: exiting" % idle)
            return None
        timeout = max(0.05, idle - (time.monotonic() - last)) if not waiters else 60.0
        try:
            r, _, _ = select.select([lsock, wake_r], [], [], timeout)
        except InterruptedError:
            continue
        if wake_r in r:
            try:
                os.read(wake_r, 512)
            except BlockingIOError:
                pass
        if lsock not in r:
            continue
        try:
            conn, _ = lsock.accept()
        except (BlockingIOError, InterruptedError):
            continue
        last = time.monotonic()
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        peer_uid = int.from_bytes(creds[4:8], sys.byteorder)
        if peer_uid not in (0, os.getuid()):
            log("refused a connection from uid %d" % peer_uid)
            conn.close()
            continue
        conn.settimeout(2.0)
        try:
            req, fds = recv_start(conn)
        except (OSError, ValueError) as e:
            log("a start refused: %s" % e)
            send(conn, {"error": str(e)})
            conn.close()
            continue
        if req["kind"] == "probe":
            if not to_prober(conn, [conn, lsock, wake_r, wake_w] + list(waiters.values())):
                send(conn, {"error": "no prober"})
            conn.close()
            continue
        env = dict(kv.split("=", 1) for kv in req["env"] if "=" in kv)
        why = learn(d, tried)
        if why:
            send(conn, {"error": "the warm process is restarting (%s)" % why})
            for fd in fds:
                os.close(fd)
            conn.close()
            return "again", "learning: " + why
        shadow = shadowed(req["path0"])
        if shadow:
            send(conn, {"error": "%s in %s has the name of a module the warm process imported: a cold start would "
                                 "import it instead" % (shadow, req["path0"])})
            for fd in fds:
                os.close(fd)
            conn.close()
            continue
        differs = env_differs(env)
        if differs:
            send(conn, {"error": "the service's environment has %s otherwise than when the warm process preloaded "
                                 "(a module read it while imported)" % differs})
            for fd in fds:
                os.close(fd)
            conn.close()
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        if threads() > 1:
            send(conn, {"error": "the warm process has %d threads: it cannot fork" % threads()})
            for fd in fds:
                os.close(fd)
            conn.close()
            return "again", "%d threads" % threads()
        req["seen"] = os.path.join(d, "seen")
        req["known"] = known(tried)
        try:
            pid = os.fork()
        except OSError as e:  # EAGAIN: the uid's process limit (its services count), ENOMEM
            log("a start refused: cannot fork (%s)" % e)
            send(conn, {"error": "the warm process cannot fork: %s" % e})
            for fd in fds:
                os.close(fd)
            conn.close()
            continue
        if pid == 0:
            signal.set_wakeup_fd(-1)
            conn.close()
            lsock.close()
            os.close(wake_r)
            os.close(wake_w)
            for c in waiters.values():
                c.close()
            if "chan" in PROBER:
                PROBER.pop("chan").close()
            return req, fds
        for fd in fds:
            os.close(fd)
        waiters[pid] = conn
        send(conn, {"pid": pid})
        conn.settimeout(None)


def stdio(fd, name, mode):
    """sys.stdin/stdout/stderr made again as the interpreter makes them at
    start (Python/pylifecycle.c, create_stdio): line-buffered on a terminal
    (stderr always), the encoding and errors of this locale."""
    import io
    old = getattr(sys, "__%s__" % name)
    unbuffered = sys.__stdout__.write_through  # -u or PYTHONUNBUFFERED, as this process was started
    buffering = 0 if unbuffered and mode == "w" else -1
    raw = io.open(fd, mode + "b", buffering=buffering, closefd=False)
    raw_name_holder = raw.raw if hasattr(raw, "raw") else raw
    try:
        raw_name_holder.name = "<%s>" % name
    except AttributeError:
        pass
    line = not unbuffered and (os.isatty(fd) or name == "stderr")
    t = io.TextIOWrapper(raw, encoding=old.encoding, errors=old.errors, newline="\n", line_buffering=line,
                         write_through=bool(unbuffered and mode == "w"))
    try:
        t.mode = mode
    except AttributeError:
        pass
    setattr(sys, name, t)
    setattr(sys, "__%s__" % name, t)


def record(path, known):
    """The child names the modules it imports in its first RECORD_SECONDS in
    path (one line each, appended, the file opened and closed each time: no
    descriptor stays open), through an audit hook (sys.addaudithook, PEP 578:
    nothing the service can see in sys). importlib.import_module raises no
    "import" event: sys.modules is looked at again whenever it has grown, at
    an "import" or "open" event (a module's code is opened)."""
    if not path:
        return
    import time
    until = time.monotonic() + RECORD_SECONDS
    on = [True]
    size = [len(sys.modules)]
    o_flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    modules = sys.modules

    def hook(event, args, _mono=time.monotonic, _open=os.open, _write=os.write, _close=os.close):
        if not on[0] or (event != "import" and event != "open"):
            return
        if _mono() > until:
            on[0] = False
            return
        new = []
        if event == "import" and isinstance(args[0], str) and args[0] not in known:
            new.append(args[0])
        if len(modules) != size[0]:
            size[0] = len(modules)
            new += [k for k in list(modules) if k not in known and k not in new]
        if not new:
            return
        known.update(new)
        on[0] = False  # the open below is an audited event too
        try:
            fd = _open(path, o_flags, 0o600)
            try:
                _write(fd, "".join(n + "\n" for n in new if isinstance(n, str)).encode())
            finally:
                _close(fd)
        except OSError:
            pass
        finally:
            on[0] = True
    sys.addaudithook(hook)


def become(req, fds):
    """In the child: the service's process, as a cold start would have it."""
    import signal
    os.setsid()
    for i, fd in enumerate(fds[:3]):
        os.dup2(fd, i, inheritable=True)
    go = fds[3]
    for fd in fds[:3]:
        if fd > 2:
            os.close(fd)
    try:
        b = os.read(go, 1)
    except OSError:
        b = b""
    if b != b"g":
        os._exit(0)
    os.closerange(3, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 65536)
    # the signals as the interpreter leaves them at start
    for s in range(1, signal.NSIG):
        try:
            if s == signal.SIGINT:
                signal.signal(s, signal.default_int_handler)
            elif s in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(s, signal.SIG_IGN)
            elif s not in (signal.SIGKILL, signal.SIGSTOP):
                signal.signal(s, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    os.chdir(req["cwd"])
    here = os.getcwd()
    for mod, k, what in CWD_REFS:
        m = sys.modules.get(mod)
        v = getattr(m, k, None)
        new = (here + os.fsdecode(v)[len(ZYGOTE_DIR):]) if what == "cwd" else req["exe"]
        if isinstance(v, bytes):
            new = os.fsencode(new)
        if isinstance(v, (str, bytes)):
            setattr(m, k, new)
    env = dict(kv.split("=", 1) for kv in req["env"] if "=" in kv)
    os.environ.clear()
    os.environ.update(env)
    import time
    time.tzset()
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        stdio(fd, name, mode)
    sys.argv[:] = req["argv"]
    sys.orig_argv[:] = req["orig_argv"]
    sys.executable = req["exe"]
    sys.path[0:0] = [req["path0"]]
    record(req.get("seen"), req["known"])
    import types
    import builtins
    m = types.ModuleType("__main__")
    m.__builtins__ = builtins
    me = sys.modules["__main__"]
    for name, mod in list(sys.modules.items()):
        if mod is me:  # __main__, and multiprocessing's __mp_main__ alias of it: the service's, as cold
            sys.modules[name] = m
    return m


def again(lsock, d, idle, why):
    """Start this process again (execv: the same pid, so its lease holds),
    with the socket as stdin, after a module was dropped (DIR/dropped names
    it, so the new image does not import it)."""
    log("%s; starting again without it" % why)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(lsock.fileno(), 0, inheritable=True)
    os.execv(sys.executable, [sys.executable, ZYGOTE_FILE, d, str(idle), "--again"])


if __name__ == "__main__":
    d = sys.argv[1]
    ZYGOTE_DIR = d.rstrip("/")
    idle = int(sys.argv[2])
    if "--again" not in sys.argv and os.fork():
        os._exit(0)  # pactown reaps this one; the warm process is init's
    import socket
    lsock = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    with open(os.path.join(d, "pid.tmp"), "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(os.path.join(d, "pid.tmp"), os.path.join(d, "pid"))
    loaded, dropped = preload(d)
    if dropped:
        with open(os.path.join(d, "dropped"), "a") as f:
            f.write("%s\t%s\n" % dropped)
        again(lsock, d, idle, "preload: %s dropped: %s" % dropped)
    with open(os.path.join(d, "preloaded"), "w") as f:
        f.write("".join(n + "\n" for n in loaded))
    CWD_REFS[:] = cwd_refs(d)
    for m, k, what in CWD_REFS:
        log("preload: %s.%s holds this process's %s: a child puts its own there" % (
            m, k, "cwd" if what == "cwd" else "sys.executable"))
    lsock.listen(16)
    log("ready: %d module(s) preloaded" % len(loaded))
    start = serve(lsock, d, idle)
    if start is None:
        sys.exit(0)
    if start[0] == "again":
        again(lsock, d, idle, start[1])
    __pactown_main = become(*start)
    __pactown_req = start[0]
    del start, loaded, dropped, d, idle, lsock
    if __pactown_req["kind"] == "module":
        import runpy
        runpy._run_module_as_main(__pactown_req["target"], alter_argv=True)
    else:
        from importlib.machinery import SourceFileLoader
        __pactown_main.__file__ = __pactown_req["target"]
        __pactown_main.__cached__ = None
        __pactown_main.__loader__ = SourceFileLoader("__main__", __pactown_req["target"])
        __pactown_main.__spec__ = None
        __pactown_main.__package__ = None
        with open(__pactown_req["target"], "rb") as __pactown_f:
            __pactown_code = compile(__pactown_f.read(), __pactown_req["target"], "exec")
        del __pactown_f
        exec(__pactown_code, __pactown_main.__dict__)
