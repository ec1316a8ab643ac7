"""pactown's ServiceRunner interface on top of `pactown serve`."""

import asyncio
import threading
import urllib.parse
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from ._client import Client, RunnerError


class ErrorCategory(str, Enum):
    """pactown's error categories (the runner answers these values)."""
    NONE = "none"
    VALIDATION = "validation"
    DEPENDENCY = "dependency"
    PORT_CONFLICT = "port_conflict"
    STARTUP_TIMEOUT = "startup_timeout"
    PROCESS_CRASH = "process_crash"
    ENVIRONMENT = "environment"
    PERMISSION = "permission"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, value: Optional[str]) -> "ErrorCategory":
        try:
            return cls(value or "none")
        except ValueError:
            return cls.UNKNOWN


@dataclass
class RunResult:
    """What a run did: pactown's RunResult fields, and the runner's own few."""
    success: bool
    port: int
    pid: Optional[int] = None
    message: str = ""
    logs: List[str] = field(default_factory=list)
    service_name: Optional[str] = None
    sandbox_path: Optional[Path] = None
    error_category: ErrorCategory = ErrorCategory.NONE
    diagnostics: Optional[Dict[str, Any]] = None
    suggestions: List[Any] = field(default_factory=list)
    stderr_output: str = ""
    error_context: Optional[Dict[str, Any]] = None
    error_report_md: Optional[str] = None
    service_id: Optional[str] = None
    user_id: Optional[str] = None
    cache_hit: bool = False
    exit_code: Optional[int] = None
    http_status: int = 0

    @classmethod
    def from_answer(cls, status: int, d: Dict[str, Any]) -> "RunResult":
        sp = d.get("sandbox_path")
        return cls(success=bool(d.get("success")), port=int(d.get("port") or 0), pid=d.get("pid") or None,
                   message=d.get("message") or d.get("error") or "", logs=list(d.get("logs") or []),
                   service_name=d.get("service_name"), sandbox_path=Path(sp) if sp else None,
                   error_category=ErrorCategory.of(d.get("error_category") if not d.get("success") else "none"),
                   diagnostics=d.get("diagnostics"), suggestions=list(d.get("suggestions") or []),
                   stderr_output=d.get("stderr_output") or "", error_context=d.get("error_context"),
                   error_report_md=d.get("error_report_md"), service_id=d.get("service_id"),
                   user_id=d.get("user_id"), cache_hit=bool(d.get("cache_hit")), exit_code=d.get("exit_code"),
                   http_status=status)

    def to_dict(self) -> Dict[str, Any]:
        return {"success": self.success, "port": self.port, "pid": self.pid, "message": self.message,
                "logs": self.logs, "service_name": self.service_name,
                "sandbox_path": str(self.sandbox_path) if self.sandbox_path else None,
                "error_category": self.error_category.value, "diagnostics": self.diagnostics,
                "suggestions": self.suggestions, "stderr_output": self.stderr_output,
                "error_context": self.error_context, "error_report_md": self.error_report_md}


@dataclass
class ValidationResult:
    """pactown's ValidationResult, from the runner's /validate."""
    valid: bool
    errors: List[str] = field(default_factory=list)
    file_count: int = 0
    deps_count: int = 0
    has_run: bool = False
    has_health: bool = False
    warnings: List[str] = field(default_factory=list)


def _failure(message: str, port: int = 0, status: int = 0) -> RunResult:
    cat = ErrorCategory.PERMISSION if status in (401, 403) else ErrorCategory.ENVIRONMENT
    return RunResult(success=False, port=port, message=message, logs=[message], error_category=cat,
                     http_status=status)


class ServiceRunner:
    """pactown's ServiceRunner, run by `pactown serve` (found from $PACTOWN_API).

    sandbox_root, default_health_check, security_policy, enable_fast_start
    and cache_config are accepted for compatibility: the server's settings
    decide them (every run is a fast start). health_timeout is sent with
    each run. api and token choose the server (see Client)."""

    def __init__(self, sandbox_root=None, default_health_check: str = "/health", health_timeout: int = 10,
                 security_policy=None, enable_fast_start: bool = True, cache_config=None,
                 api: Optional[str] = None, token: Optional[str] = None):
        self.sandbox_root = Path(sandbox_root) if sandbox_root else None
        self.default_health_check = default_health_check
        self.health_timeout = health_timeout
        self.security_policy = security_policy
        self.enable_fast_start = enable_fast_start
        self.cache_config = cache_config
        self.client = Client(api, token)
        self._project_ids: Dict[str, int] = {}

    # ---- runs ----

    def _request(self, service_id: str, content: str, port: int, env, user_id, user_profile,
                 skip_health_check: bool, run_once: bool, health_timeout: Optional[int]) -> Dict[str, Any]:
        body: Dict[str, Any] = {"project_id": 0, "service_id": service_id, "readme_content": content,
                                "port": int(port or 0), "skip_health_check": bool(skip_health_check),
                                "run_once": bool(run_once), "fast_mode": True,
                                "health_timeout": int(health_timeout or self.health_timeout)}
        if env:
            body["env"] = {str(k): str(v) for k, v in env.items()}
        if user_id is not None:
            body["user_id"] = str(user_id)
        if user_profile:
            body["user_profile"] = dict(user_profile)
        return body

    def _run_streaming(self, body: Dict[str, Any], deliver: Callable[[str], None]) -> RunResult:
        result = None
        try:
            for status, obj in self.client.stream("POST", "/run/stream", body):
                if obj.get("type") == "log":
                    deliver(str(obj.get("message", "")))
                elif obj.get("type") == "result":
                    result = RunResult.from_answer(status, obj.get("result") or {})
                elif "success" in obj:  # refused before the stream began (400, 409, ...)
                    result = RunResult.from_answer(status, obj)
        except RunnerError as e:
            return _failure(str(e), body.get("port", 0), e.status)
        return result or _failure("the runner ended the stream without a result", body.get("port", 0))

    async def _run(self, body: Dict[str, Any], on_log: Optional[Callable[[str], None]]) -> RunResult:
        loop = asyncio.get_running_loop()
        if on_log is None:
            def plain() -> RunResult:
                try:
                    return RunResult.from_answer(*self.client.request("POST", "/run", body))
                except RunnerError as e:
                    return _failure(str(e), body.get("port", 0), e.status)
            return await loop.run_in_executor(None, plain)
        # the lines reach on_log in the event loop's thread, as the server streams them
        queue: "asyncio.Queue[Any]" = asyncio.Queue()
        done = object()

        def work() -> None:
            try:
                r = self._run_streaming(body, lambda line: loop.call_soon_threadsafe(queue.put_nowait, line))
            except BaseException as e:  # delivered to the caller, not lost in the thread
                r = e
            loop.call_soon_threadsafe(queue.put_nowait, (done, r))

        threading.Thread(target=work, name="pactown-fs-run", daemon=True).start()
        while True:
            item = await queue.get()
            if isinstance(item, tuple) and len(item) == 2 and item[0] is done:
                if isinstance(item[1], BaseException):
                    raise item[1]
                return item[1]
            on_log(item)

    async def fast_run(self, service_id: str, content: str, port: int, env: Optional[Dict[str, str]] = None,
                       user_id: Optional[str] = None, user_profile: Optional[Dict[str, Any]] = None,
                       skip_health_check: bool = False,
                       on_log: Optional[Callable[[str], None]] = None) -> RunResult:
        """Start a service on a cached venv; message says how long it took
        ("Running on port P (Nms, cached)")."""
        body = self._request(service_id, content, port, env, user_id, user_profile, skip_health_check, False, None)
        return await self._run(body, on_log)

    async def run_from_content(self, service_id: str, content: str, port: int, env: Optional[Dict[str, str]] = None,
                               restart_if_running: bool = True, wait_for_health: bool = True,
                               health_timeout: Optional[int] = None,
                               on_log: Optional[Callable[[str], None]] = None, user_id: Optional[str] = None,
                               user_profile: Optional[Dict[str, Any]] = None) -> RunResult:
        """Start a service; a running one of the same id is stopped first
        when restart_if_running."""
        if restart_if_running:
            st = self.get_status(service_id)
            if st and st.get("running"):
                self.stop(service_id)
        body = self._request(service_id, content, port, env, user_id, user_profile, not wait_for_health, False,
                             health_timeout)
        return await self._run(body, on_log)

    async def run_job_from_content(self, service_id: str, content: str, env: Optional[Dict[str, str]] = None,
                                   on_log: Optional[Callable[[str], None]] = None, user_id: Optional[str] = None,
                                   user_profile: Optional[Dict[str, Any]] = None) -> RunResult:
        """Run the README's command to completion as a job; exit_code says how it ended."""
        body = self._request(service_id, content, 0, env, user_id, user_profile, True, True, None)
        return await self._run(body, on_log)

    # ---- services ----

    def stop(self, service_id: str) -> RunResult:
        try:
            status, d = self.client.request("POST", "/stop", {"project_id": 0, "service_id": service_id})
        except RunnerError as e:
            return _failure(str(e), 0, e.status)
        return RunResult.from_answer(status, d)

    def get_status(self, service_id: str) -> Optional[Dict[str, Any]]:
        """The service's status, or None if the runner does not know it
        (RunnerError when the runner cannot be asked: down, or the token refused)."""
        status, d = self.client.request("GET", "/status/" + urllib.parse.quote(service_id, safe=""))
        if status == 404:
            return None
        if status != 200:
            raise RunnerError("/status/%s: %s" % (service_id, d.get("error") or status), status=status)
        return d

    def list_services(self) -> List[Dict[str, Any]]:
        """The running services (RunnerError when the runner cannot be asked)."""
        status, d = self.client.request("GET", "/status")
        if status != 200:
            raise RunnerError("/status: %s" % (d.get("error") or status), status=status)
        return list(d.get("services") or [])

    def stop_all(self) -> None:
        for s in self.list_services():
            self.stop(s["service_id"])

    def get_cache_stats(self) -> Dict[str, Any]:
        """pactown's fields and the Fast Start page's: caching_enabled,
        cache_entries, total_size_mb, hit_rate, oldest_entry_hours, dep_cache."""
        status, d = self.client.request("GET", "/cache/stats")
        return d if status == 200 else {"caching_enabled": False, "error": d.get("error")}

    def validate_content(self, content: str) -> ValidationResult:
        status, d = self.client.request("POST", "/validate", {"readme_content": content})
        if status != 200:
            return ValidationResult(valid=False, errors=[d.get("error") or "validation failed (%d)" % status])
        return ValidationResult(valid=bool(d.get("valid")), errors=list(d.get("errors") or []),
                                file_count=len(d.get("files") or []), deps_count=len(d.get("deps") or []),
                                has_run=bool(d.get("run_command")), has_health=bool(d.get("tests")),
                                warnings=list(d.get("warnings") or []))
