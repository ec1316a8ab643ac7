"""Tests of pactown_fs against a real `pactown serve` (tests/integration/api_python.sh
starts it, with pactownfs mounted and a local wheelhouse).

Environment: PACTOWN_API (the server), PTFS_README_A and PTFS_README_B (two
READMEs of HTTP services with different requirement sets, built from the
wheelhouse), PTFS_JOB_README (a job that prints "job ran" and exits 3).
"""

import ast
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import io
import os
import socket
import unittest
import urllib.request

from pactown_fs import DependencyCache, ErrorCategory, FastServiceStarter, RunnerError, RunResult, ServiceRunner

README_A = open(os.environ["PTFS_README_A"]).read() if "PTFS_README_A" in os.environ else ""
README_B = open(os.environ["PTFS_README_B"]).read() if "PTFS_README_B" in os.environ else ""
JOB = open(os.environ["PTFS_JOB_README"]).read() if "PTFS_JOB_README" in os.environ else ""

# The Quick Start of pactown's Fast Start page (docs/FAST_START.md), word for
# word but for the import line.
QUICK_START = '''
from pactown_fs import ServiceRunner

runner = ServiceRunner(
    sandbox_root="/tmp/sandboxes",
    enable_fast_start=True,  # Enabled by default
)

# First run - creates and caches venv
result = await runner.fast_run(
    service_id="my-api",
    content=markdown_content,
    port=8001,
)
print(f"Started in {result.message}")  # "Started in 150ms"

# Second run - uses cached venv
result = await runner.fast_run(
    service_id="my-api-2",
    content=markdown_content,  # Same deps
    port=8002,
)
print(f"Started in {result.message}")  # "Started in 50ms (cached)"
'''


def port_free(port: int) -> bool:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT does not count
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def get(port: int, path: str = "/") -> int:
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return r.status


@unittest.skipUnless("PACTOWN_API" in os.environ and README_A, "needs PACTOWN_API and PTFS_README_A (api_python.sh)")
class RunnerTest(unittest.TestCase):
    def setUp(self):
        self.runner = ServiceRunner(health_timeout=30)
        self.started = []

    def tearDown(self):
        for sid in self.started:
            self.runner.stop(sid)

    def run_async(self, coro):
        return asyncio.run(coro)

    def test_quick_start_unchanged_but_the_import(self):
        if not (port_free(8001) and port_free(8002)):
            self.skipTest("ports 8001 and 8002 (fixed in the Quick Start) are taken on this machine")
        self.started += ["my-api", "my-api-2"]
        code = compile(QUICK_START, "quick-start", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            coro = eval(code, {"markdown_content": README_A})
            if coro is not None:
                self.run_async(coro)
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertRegex(lines[0], r"^Started in Running on port 8001 \(\d+ms(, cached)?\)$")
        self.assertRegex(lines[1], r"^Started in Running on port 8002 \(\d+ms, cached\)$")
        self.assertEqual(get(8001), 200)
        self.assertEqual(get(8002), 200)

    def test_on_log_gets_the_lines_as_the_result_has_them(self):
        seen = []
        self.started.append("py-log")
        r = self.run_async(self.runner.fast_run("py-log", README_A, 0, on_log=seen.append))
        self.assertTrue(r.success, r.message)
        self.assertEqual(seen, r.logs)
        self.assertIn("Starting: python -m ptdemo_app", seen)
        self.assertTrue(any(line.startswith("\u2713 Running in ") for line in seen), seen)
        self.assertEqual(get(r.port), 200)

    def test_status_list_stop(self):
        self.started.append("py-status")
        r = self.run_async(self.runner.fast_run("py-status", README_B, 0, env={"GREETING": "hi"}))
        self.assertTrue(r.success, r.message)
        st = self.runner.get_status("py-status")
        self.assertEqual((st["running"], st["port"], st["pid"]), (True, r.port, r.pid))
        self.assertIn("py-status", [s["service_id"] for s in self.runner.list_services()])
        stopped = self.runner.stop("py-status")
        self.assertTrue(stopped.success, stopped.message)
        self.assertFalse(self.runner.get_status("py-status")["running"])
        self.assertIsNone(self.runner.get_status("py-no-such-service"))

    def test_job(self):
        r = self.run_async(self.runner.run_job_from_content("py-job", JOB))
        self.assertFalse(r.success)
        self.assertEqual(r.exit_code, 3)
        self.assertIn("job ran", r.stderr_output)

    def test_validate_names_the_line(self):
        v = self.runner.validate_content("```bash markpact:run\ntrue\n```\n"
                                         "```text markpact:deps python\nnot a requirement ===\n```\n")
        self.assertFalse(v.valid)
        self.assertRegex(v.errors[0], r"^readme_content:5: 'not a requirement ===': ")
        ok = self.runner.validate_content(README_A)
        self.assertTrue(ok.valid, ok.errors)
        self.assertEqual((ok.deps_count, ok.has_run), (2, True))

    def test_bad_readme_is_a_validation_failure(self):
        r = self.run_async(self.runner.fast_run("py-bad", "```text markpact:deps python\n==\n```\n", 0))
        self.assertFalse(r.success)
        self.assertEqual(r.error_category, ErrorCategory.VALIDATION)
        self.assertEqual(r.http_status, 400)

    def test_a_wrong_token_is_never_no_services(self):
        wrong = ServiceRunner(token="not-the-token")
        with self.assertRaises(RunnerError) as e:
            wrong.list_services()
        self.assertEqual(e.exception.status, 401)
        with self.assertRaises(RunnerError):
            wrong.get_status("py-log")
        r = self.run_async(wrong.fast_run("py-wrong", README_A, 0))
        self.assertEqual((r.success, r.error_category, r.http_status), (False, ErrorCategory.PERMISSION, 401))
        r = self.run_async(wrong.fast_run("py-wrong", README_A, 0, on_log=print))
        self.assertEqual((r.success, r.error_category), (False, ErrorCategory.PERMISSION))

    def test_a_field_error_is_a_validation_failure(self):
        r = self.run_async(self.runner.fast_run("py-port", README_A, 80))
        self.assertEqual((r.success, r.error_category, r.http_status), (False, ErrorCategory.VALIDATION, 400))
        self.assertIn("port", r.message)

    def test_cache_stats_fields(self):
        DependencyCache().create_and_cache(["ptdemo-core"])
        s = self.runner.get_cache_stats()
        for f in ("caching_enabled", "cache_entries", "total_size_mb", "hit_rate", "oldest_entry_hours", "dep_cache"):
            self.assertIn(f, s)
        self.assertTrue(s["caching_enabled"])
        self.assertGreaterEqual(s["cache_entries"], 1)

    def test_dependency_cache_prewarms_through_the_daemon(self):
        cache = DependencyCache()
        deps = ["ptdemo-extra", "ptdemo-core==1.0"]
        self.assertIsNone(cache.get_cached_venv(deps))
        v = cache.create_and_cache(deps)
        self.assertTrue(v.venv_path and (v.venv_path / "bin" / "python").exists(), v)
        again = cache.get_cached_venv(list(reversed(deps)))
        self.assertEqual((again.deps_hash, again.was_cached), (v.deps_hash, True))

    def test_fast_create_sandbox_starts_nothing(self):
        st = FastServiceStarter()
        r = self.run_async(st.fast_create_sandbox("py-prep", README_A))
        self.assertTrue(r.success, r.message)
        self.assertTrue((r.sandbox_path / "data" / "hello.txt").exists())
        self.assertIsNone(ServiceRunner().get_status("py-prep"))


class PackagingTest(unittest.TestCase):
    def test_no_pactown_module_nor_console_script(self):
        self.assertIsNone(importlib.util.find_spec("pactown"))
        dist = importlib.metadata.distribution("pactown-fs")
        self.assertEqual(list(dist.entry_points), [])
        self.assertEqual(sorted({f.parts[0] for f in dist.files if f.suffix == ".py"}), ["pactown_fs"])

    def test_run_result_keeps_unknown_categories(self):
        r = RunResult.from_answer(500, {"success": False, "error_category": "something new", "error": "x"})
        self.assertEqual((r.error_category, r.message, r.http_status), (ErrorCategory.UNKNOWN, "x", 500))


if __name__ == "__main__":
    unittest.main()
