# pyc_share.py — bytecode for a new venv, compiled once per unpacked wheel
# and hard-linked into every venv that holds the wheel (issue 12).
#
# Run by pactown-build with the venv's base interpreter (the one the venv was
# made from, so the magic number and cache tag are the venv's), after
# `uv pip install --link-mode hardlink`:
#
#     PYTHON -I -S -B -c <this text> UV_CACHE SITE_PACKAGES STAGING
#
# Never VENV/bin/python: that one reads VENV/pyvenv.cfg, which a wheel may
# replace (.data/data/pyvenv.cfg), and its "home" then chooses the standard
# library imported at start-up. UV_CACHE "" (a uv cache of one's own, files
# copied): every module is compiled in the venv.
#
# UV_CACHE is the builder's uv cache (<store>/.uv); its archive bucket
# (archive-v0, in uv 0.4 to 0.13) has one directory per unpacked wheel,
# whose files uv hard-linked into SITE_PACKAGES. Without such a bucket every
# module is compiled in the venv, as --compile-bytecode would.
#
# 1. The wheels this venv holds are found by inode: a venv's
#    <dist>.dist-info/METADATA is the same inode as its archive's.
# 2. Each such archive gets bytecode for its modules, in the archive, where
#    it is missing or stale (compileall's own check: source mtime and size in
#    the .pyc header, PEP 552). A wheel compiled for an earlier venv costs a
#    stat and a 16-byte read per module here, nothing more. Another build's
#    uv may be linking from the same archive meanwhile, so nothing is ever
#    written in an archive: the .pyc files are compiled into STAGING (a new
#    directory in the store, on the same filesystem) and published whole: a
#    staged __pycache__ directory is renamed into place at once, or, where
#    one is there already, each finished file is hard-linked into it (or
#    renamed over a stale one: a wheel may ship its own __pycache__, whose
#    .pyc never matches the mtime uv gives the unpacked source). A uv
#    walking the archive sees no __pycache__, or only finished files. A file
#    named __pycache__ in the way: those modules are compiled in the venv.
# 3. The archive's .pyc files are hard-linked into the venv's __pycache__
#    directories, for each module whose source in the venv is the archive's
#    own file (same inode) and whose .pyc there is missing or stale (a link
#    of the wheel's own, replaced by rename(2)). Python checks a .pyc against its source's mtime
#    and size, which a hard link shares, and sets co_filename to the path it
#    imported from (importlib's _fix_up_module / _imp._fix_co_filename), so
#    tracebacks name the venv's path, not the archive's.
# 4. What is left (modules of the venv's own, not from an archive, and
#    those of a wheel's .data directory) is compiled in the venv.
#
# A shared inode is never rewritten in place. Prints one summary line.
import importlib.util
import multiprocessing
import os
import py_compile
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor

TAG = sys.implementation.cache_tag
PARALLEL_FROM = 64  # modules: fewer are compiled in this process


def pyc_of(src):
    return importlib.util.cache_from_source(src)


def up_to_date(src, pyc=None):
    """compileall's test (compile_file without force): the .pyc header holds
    the source's mtime and size. pyc: where to look (the source's own)."""
    try:
        st = os.stat(src)
        with open(pyc or pyc_of(src), "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    flags = int.from_bytes(head[4:8], "little")
    if head[:4] != importlib.util.MAGIC_NUMBER:
        return False
    if flags & 1:  # hash-based (PEP 552): valid whatever the mtime
        return True
    return (int.from_bytes(head[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF and
            int.from_bytes(head[12:16], "little") == st.st_size & 0xFFFFFFFF)


def link_over(src, dst):
    """Hard-link src at dst, replacing what dst is by rename(2) (a stale .pyc
    linked from somewhere: its inode is never written); False when it
    cannot (a file named __pycache__ where the directory would be)."""
    tmp = "%s.%d.tmp" % (dst, os.getpid())
    try:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.link(src, tmp)
        os.replace(tmp, dst)
        return True
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False


def compile_one(job):
    """job: (source, .pyc path) -> compiled? (py_compile writes a temporary
    file and renames it; the invalidation mode is py_compile's default)"""
    src, cfile = job
    try:
        py_compile.compile(src, cfile=cfile, doraise=True)
        return True
    except (py_compile.PyCompileError, OSError, ValueError):
        return False


def worker_init(parent):
    """A worker ends with this process: pactown-build starts it with
    PR_SET_PDEATHSIG, which fork(2) does not pass on, so a pactown-build
    killed with SIGKILL would leave the workers waiting for work for ever."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (ImportError, OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)  # it ended before the prctl


def compile_all(jobs):
    """Returns the number of modules that did not compile (syntax errors in
    files shipped for another Python: pip and uv skip those too)."""
    if len(jobs) >= PARALLEL_FROM and (os.cpu_count() or 1) > 1:
        # fork: this script comes from -c, which spawn and forkserver
        # children could not import again; nothing here runs threads
        with ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=multiprocessing.get_context("fork"),
                                 initializer=worker_init, initargs=(os.getpid(),)) as pool:
            ok = list(pool.map(compile_one, jobs, chunksize=16))
    else:
        ok = [compile_one(j) for j in jobs]
    return ok.count(False)


def compile_into_archives(stale, staging):
    """Compile the archive modules stale into staging, then publish each
    directory's .pyc files in the archive (see 2. above)."""
    dirs = {}
    for src in stale:
        dirs.setdefault(os.path.dirname(src), []).append(src)
    jobs, published = [], []
    for i, (d, srcs) in enumerate(sorted(dirs.items())):
        sdir = os.path.join(staging, str(i))
        os.makedirs(sdir)
        mine = [(src, os.path.join(sdir, os.path.basename(pyc_of(src)))) for src in srcs]
        jobs += mine
        published.append((sdir, os.path.join(d, "__pycache__"), mine))
    failed = compile_all(jobs)
    for sdir, target, mine in published:
        try:
            os.rename(sdir, target)  # the whole directory at once (rename(2) replaces an empty one)
            continue
        except OSError:
            pass  # a __pycache__ with files in it (another interpreter's, another build's, the wheel's own), or no directory
        for src, staged in mine:
            pyc = os.path.join(target, os.path.basename(staged))
            if not os.path.exists(staged):
                continue  # it did not compile
            try:
                os.link(staged, pyc)
            except FileExistsError:
                # another build published it first (the same bytecode), or the
                # wheel shipped a .pyc of its own, stale for the unpacked source
                if not up_to_date(src, pyc):
                    try:
                        os.replace(staged, pyc)  # from staging: no other name ever shows in the archive
                    except OSError:
                        pass
            except OSError:
                pass  # a file named __pycache__: compiled in the venv (or not at all) instead
    return failed


def sources(root, skip_data=False):
    """The modules beneath root. skip_data: not those in a wheel's
    <name>.data/ directory, whose files uv checks against the wheel's RECORD
    when it installs them (a __pycache__ there fails the install: "RECORD
    file doesn't match wheel contents"); they are compiled in the venv."""
    for d, dirs, names in os.walk(root):
        dirs[:] = [x for x in dirs if x != "__pycache__" and not (skip_data and d == root and x.endswith(".data"))]
        for n in names:
            if n.endswith(".py"):
                yield os.path.join(d, n)


def archive_metadata(cache):
    """(st_dev, st_ino) of each archive's METADATA -> the archive's path."""
    found = {}
    try:
        buckets = [os.path.join(cache, b) for b in os.listdir(cache) if b.startswith("archive-v")]
    except OSError:
        buckets = []
    archives = []
    for b in buckets:
        try:
            archives += [os.path.join(b, a) for a in os.listdir(b)]
        except OSError:
            pass
    for root in archives:
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for n in names:
            if n.endswith(".dist-info"):
                try:
                    st = os.stat(os.path.join(root, n, "METADATA"))
                except OSError:
                    continue
                found[(st.st_dev, st.st_ino)] = root
    return found


def venv_path(root, src, sp):
    """Where an archive's module is installed: the archive is the wheel's
    root, installed into site-packages (the wheel spec, "Installing a wheel")."""
    return os.path.join(sp, os.path.relpath(src, root))


def same_file(a, b):
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def main():
    cache, sp, staging = sys.argv[1], sys.argv[2], sys.argv[3]
    meta = archive_metadata(cache)
    used = set()
    for n in os.listdir(sp):
        if n.endswith(".dist-info"):
            try:
                st = os.stat(os.path.join(sp, n, "METADATA"))
            except OSError:
                continue
            root = meta.get((st.st_dev, st.st_ino))
            if root:
                used.add(root)
    shared = [(root, src) for root in sorted(used) for src in sources(root, skip_data=True)]
    stale = [src for _, src in shared if not up_to_date(src)]
    failed = 0
    if stale:
        os.mkdir(staging, 0o755)
        try:
            failed = compile_into_archives(stale, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    linked = 0
    for root, src in shared:
        dst = venv_path(root, src, sp)
        if not same_file(src, dst) or up_to_date(dst) or not up_to_date(src):
            continue  # not the archive's file; its bytecode there already (uv linked it); none in the archive
        if link_over(pyc_of(src), pyc_of(dst)):  # over a stale one uv linked: the wheel's own
            linked += 1
    own = [src for src in sources(sp) if not up_to_date(src)]
    failed += compile_all([(src, pyc_of(src)) for src in own])
    print("pactown-build: bytecode: %d wheel(s) shared, %d module(s) compiled into them now, %d .pyc linked "
          "after the install, %d module(s) of the venv's own compiled, %d did not compile"
          % (len(used), len(stale), linked, len(own), failed), flush=True)


main()
