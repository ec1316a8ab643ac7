"""pactown-fs: pactown's runner interface (ServiceRunner, DependencyCache,
FastServiceStarter) backed by `pactown serve`, the runner API of pactown-fs.

    from pactown_fs import ServiceRunner
    runner = ServiceRunner()
    result = await runner.fast_run("my-api", markdown_content, port=8001)

The server is found from $PACTOWN_API ("unix:///path" or "http://host:port"),
else /run/pactown/api.sock; the token from $PACTOWN_RUNNER_TOKEN.
"""

from ._client import Client, RunnerError
from .cache import CachedVenv, DependencyCache, FastServiceStarter, FastStartResult
from .runner import ErrorCategory, RunResult, ServiceRunner, ValidationResult

__all__ = ["Client", "RunnerError", "ServiceRunner", "RunResult", "ValidationResult", "ErrorCategory",
           "DependencyCache", "CachedVenv", "FastServiceStarter", "FastStartResult"]
__version__ = "0.1.0"
