"""HTTP to `pactown serve` over a Unix socket or TCP, with http.client only."""

import http.client
import json
import os
import socket
import urllib.parse
from typing import Any, Dict, Iterator, Optional, Tuple

DEFAULT_SOCKET = "/run/pactown/api.sock"


class RunnerError(Exception):
    """The runner could not be reached, refused the token (status 401/403),
    or answered something that is not JSON."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: Optional[float]):
        super().__init__("localhost", timeout=timeout)
        self._unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            s.settimeout(self.timeout)
        try:
            s.connect(self._unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


class Client:
    """One runner: `api` is "unix:///path", "http://host:port" or
    "http://host:port/runner" (default: $PACTOWN_API, else the default
    socket); `token` is sent as X-Runner-Token (default:
    $PACTOWN_RUNNER_TOKEN)."""

    def __init__(self, api: Optional[str] = None, token: Optional[str] = None, timeout: float = 3600.0):
        # the server's own setting (PACTOWN_API_SOCKET) is the next place to look
        api = api or os.environ.get("PACTOWN_API") or "unix://" + (os.environ.get("PACTOWN_API_SOCKET")
                                                                    or DEFAULT_SOCKET)
        self.api = api
        token = token if token is not None else os.environ.get("PACTOWN_RUNNER_TOKEN")
        self.token = token.strip() if token else None  # a token read from a file keeps no newline
        self.timeout = timeout
        u = urllib.parse.urlsplit(api)
        if u.scheme == "unix":
            self._unix = u.path or u.netloc
            self._host = None
            self._prefix = ""
        elif u.scheme == "http":
            self._unix = None
            self._host = (u.hostname or "127.0.0.1", u.port or 80)
            self._prefix = u.path.rstrip("/")
        else:
            raise ValueError("PACTOWN_API %r: expected unix:///path or http://host:port" % api)

    def _connection(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        if self._unix:
            return _UnixHTTPConnection(self._unix, timeout)
        return http.client.HTTPConnection(self._host[0], self._host[1], timeout=timeout)

    def _headers(self, body: Optional[bytes]) -> Dict[str, str]:
        h = {"Accept": "application/json"}
        if body is not None:
            h["Content-Type"] = "application/json"
        if self.token:
            h["X-Runner-Token"] = self.token
        return h

    def _send(self, method: str, path: str, payload: Any, timeout: Optional[float]):
        body = None if payload is None else json.dumps(payload).encode()
        conn = self._connection(timeout if timeout is not None else self.timeout)
        try:
            conn.request(method, self._prefix + path, body=body, headers=self._headers(body))
            return conn, conn.getresponse()
        except OSError as e:
            conn.close()
            raise RunnerError("pactown serve at %s: %s (is `pactown serve` running? PACTOWN_API names where:"
                              " unix:///path/api.sock or http://host:port)" % (self.api, e)) from e

    def request(self, method: str, path: str, payload: Any = None,
                timeout: Optional[float] = None) -> Tuple[int, Dict[str, Any]]:
        """One request; returns (HTTP status, the JSON answer)."""
        conn, resp = self._send(method, path, payload, timeout)
        try:
            data = resp.read()
        finally:
            conn.close()
        try:
            d = json.loads(data.decode("utf-8"))
        except ValueError as e:
            raise RunnerError("pactown serve answered %d with something that is not JSON: %r"
                              % (resp.status, data[:200])) from e
        if resp.status in (401, 403):
            # a wrong or missing token is never "no services"
            raise RunnerError("pactown serve at %s refused the request (%d): %s (PACTOWN_RUNNER_TOKEN)"
                              % (self.api, resp.status, d.get("error", "")), status=resp.status)
        return resp.status, d

    def stream(self, method: str, path: str, payload: Any = None,
               timeout: Optional[float] = None) -> Iterator[Tuple[int, Dict[str, Any]]]:
        """An NDJSON answer, one (status, object) per line as it comes."""
        conn, resp = self._send(method, path, payload, timeout)
        try:
            while True:
                line = resp.readline()
                if not line:
                    break
                line = line.strip()
                if line:
                    if resp.status in (401, 403):
                        raise RunnerError("pactown serve at %s refused the request (%d) (PACTOWN_RUNNER_TOKEN)"
                                          % (self.api, resp.status), status=resp.status)
                    try:
                        yield resp.status, json.loads(line.decode("utf-8"))
                    except ValueError as e:
                        raise RunnerError("pactown serve sent a line that is not JSON: %r" % line[:200]) from e
        finally:
            conn.close()
