"""pactown's DependencyCache and FastServiceStarter, through `pactown serve`
(the venvs live in the pactownfs cache: built once, shared read-only)."""

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from ._client import Client, RunnerError


@dataclass
class CachedVenv:
    """A venv in the cache: its key (pactown calls it the deps hash) and path."""
    deps_hash: str
    venv_path: Optional[Path]
    deps: List[str] = field(default_factory=list)
    was_cached: bool = False


class DependencyCache:
    """pactown's DependencyCache. cache_root, max_cache_size and max_age_hours
    are accepted for compatibility: the daemon's settings (max_entries,
    max_age_hours) decide eviction."""

    def __init__(self, cache_root=None, max_cache_size: int = 20, max_age_hours: int = 24,
                 api: Optional[str] = None, token: Optional[str] = None):
        self.cache_root = Path(cache_root) if cache_root else None
        self.max_cache_size = max_cache_size
        self.max_age_hours = max_age_hours
        self.client = Client(api, token)

    def _venv(self, deps: List[str], create: bool) -> Optional[CachedVenv]:
        status, d = self.client.request("POST", "/cache/venv", {"deps": [str(x) for x in deps], "create": create})
        if status != 200:
            raise RunnerError("cache/venv: %s" % (d.get("error") or status))
        if not d.get("cached"):
            return None
        return CachedVenv(deps_hash=d["key"], venv_path=Path(d["venv_path"]) if d.get("venv_path") else None,
                          deps=list(deps), was_cached=bool(d.get("was_cached")))

    def get_cached_venv(self, deps: List[str]) -> Optional[CachedVenv]:
        """The built venv of deps, or None when it is not built (nothing is built)."""
        return self._venv(deps, False)

    def create_and_cache(self, deps: List[str]) -> CachedVenv:
        """The venv of deps, built by the daemon first when it is not (a prewarm)."""
        v = self._venv(deps, True)
        if v is None:
            raise RunnerError("the runner built no venv for %r" % (deps,))
        return v


@dataclass
class FastStartResult:
    success: bool
    startup_time_ms: float = 0.0
    cache_hit: bool = False
    message: str = ""
    sandbox_path: Optional[Path] = None
    logs: List[str] = field(default_factory=list)


class FastServiceStarter:
    """pactown's FastServiceStarter: fast_create_sandbox writes a sandbox and
    resolves its venv (POST /sandbox/prepare), starting nothing."""

    def __init__(self, sandbox_root=None, enable_caching: bool = True, enable_pool: bool = False,
                 api: Optional[str] = None, token: Optional[str] = None):
        self.sandbox_root = Path(sandbox_root) if sandbox_root else None
        self.enable_caching = enable_caching
        self.enable_pool = enable_pool
        self.client = Client(api, token)
        self.dep_cache = DependencyCache(api=api, token=token)

    async def fast_create_sandbox(self, service_name: str, content: str,
                                  on_log: Optional[Callable[[str], None]] = None,
                                  env: Optional[Dict[str, str]] = None) -> FastStartResult:
        body: Dict[str, Any] = {"project_id": 0, "service_id": service_name, "readme_content": content}
        if env:
            body["env"] = {str(k): str(v) for k, v in env.items()}
        t0 = time.monotonic()
        try:
            status, d = await asyncio.get_running_loop().run_in_executor(
                None, lambda: self.client.request("POST", "/sandbox/prepare", body))
        except RunnerError as e:
            return FastStartResult(success=False, message=str(e))
        for line in d.get("logs") or []:
            if on_log:
                on_log(line)
        sp = d.get("sandbox_path") or d.get("sandbox")
        return FastStartResult(success=bool(d.get("success")), startup_time_ms=(time.monotonic() - t0) * 1000,
                               cache_hit=bool(d.get("cache_hit")), message=d.get("message") or d.get("error") or "",
                               sandbox_path=Path(sp) if sp else None, logs=list(d.get("logs") or []))

    def get_cache_stats(self) -> Dict[str, Any]:
        status, d = self.client.request("GET", "/cache/stats")
        return d
