"""The HTTP side of the viewer (:mod:`benchmarks.play`): routes, request checks, the job queue.

Refused requests get a 4xx status and ``{"error": message}``. Only the page this server serves may drive it:
a request must name this server in ``Host`` (``127.0.0.1:PORT``, ``localhost:PORT`` or the bound address;
any host once ``--allow-remote`` binds a non-loopback one), a request with an ``Origin`` must come from that
same origin (403 otherwise, so other web pages and DNS rebinding cannot reach the API), and a POST must carry
``Content-Type: application/json`` (415), which a page of another origin cannot send without being refused.
Bodies are capped at ``MAX_BODY_BYTES`` (413) and must be a JSON object (400, however deeply nested).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import json
import logging
import queue
import re
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from benchmarks.play import PlaySession

logger = logging.getLogger(__name__)

CONTROLLERS = ("expert", "agent")
STATIC_DIR = Path(__file__).with_name("play_static")
MAX_BODY_BYTES = 64 * 1024
# A refused body is read and dropped up to this size, so that a client still sending it reads the answer.
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_TIMEOUT_S = 2.0
# A client that hangs up early: answered with nothing, logged without a traceback.
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
MAX_RUN_STEPS = 10_000
JOB_TIMEOUT_S = 600.0


class PlayError(Exception):
    """A refused request: the HTTP ``status`` and a ``message`` for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class JobQueue:
    """Runs callables on the one thread that calls :meth:`work` (the thread whose EGL context renders)."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()

    def call(self, fn: Callable[[], Any], timeout: float = JOB_TIMEOUT_S) -> Any:
        """``fn()`` run on the working thread: its result, or its exception raised here (503 on timeout)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((future, fn))
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise PlayError(503, f"the environment did not answer within {timeout:.0f} s") from None

    def work(self, until: Callable[[], bool] | None = None, poll_s: float = 0.05) -> None:
        """Run queued calls on this thread until ``until()`` is true (forever when None)."""
        while until is None or not until():
            try:
                future, fn = self._queue.get(timeout=poll_s)
            except queue.Empty:
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except Exception as err:  # the request that asked answers with it
                    future.set_exception(err)


def _show(value: Any, limit: int = 80) -> str:
    """``value`` as JSON for an error message, cut to ``limit`` characters."""
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):
        text = f"a nested {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _integer(low: int, high: int, what: str) -> Callable[[str, Any], int]:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise PlayError(400, f"field {key!r} must be an integer {what}, got {_show(value)}")
        return value

    return check


def _controller(key: str, value: Any) -> str:
    if value not in CONTROLLERS:
        raise PlayError(400, f"field {key!r} must be one of {list(CONTROLLERS)}, got {_show(value)}")
    return value


def _episode_id(key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PlayError(400, f"field {key!r} must be a string, got {_show(value)}")
    return str(value)


_SEED = _integer(0, 2**63 - 1, ">= 0")
_ACTION = _integer(0, 3, "0..3 (0 STOP, 1 FORWARD, 2 LEFT, 3 RIGHT)")
_MAX_STEPS = _integer(1, MAX_RUN_STEPS, f"1..{MAX_RUN_STEPS}")
# POST path -> (PlaySession method, {field: validator}, required fields)
_POST_ROUTES: dict[str, tuple[str, dict[str, Callable[[str, Any], Any]], tuple[str, ...]]] = {
    "/api/reset": ("reset", {"episode_id": _episode_id, "seed": _SEED}, ()),
    "/api/step": ("step", {"action": _ACTION, "controller": _controller}, ()),
    "/api/run": ("run", {"controller": _controller, "max_steps": _MAX_STEPS}, ("controller",)),
    "/api/video": ("save_video", {}, ()),
}
_GET_ROUTES = {"/api/state": "state", "/api/episodes": "episodes"}
_CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def _arguments(path: str, body: dict) -> dict[str, Any]:
    """The validated keyword arguments of the session method behind a POST path."""
    _, fields, required = _POST_ROUTES[path]
    unknown, missing = sorted(set(body) - set(fields)), [k for k in required if k not in body]
    if unknown or missing:
        problem = f"unknown field(s) {unknown}" if unknown else f"missing field(s) {missing}"
        raise PlayError(400, f"{path}: {problem}; fields: {list(fields)}, required: {list(required)}")
    return {key: fields[key](key, value) for key, value in body.items() if value is not None}


def _json(data: Any) -> bytes:
    return json.dumps(data, allow_nan=False).encode()


class PlayServer(ThreadingHTTPServer):
    """Serves a :class:`PlaySession`; requests hand the environment work to :attr:`jobs` (see
    :func:`start_server`)."""

    daemon_threads = True

    def __init__(self, session: PlaySession, host: str = "127.0.0.1", port: int = 8765) -> None:
        super().__init__((host, port), _Handler)
        self.session, self.jobs = session, JobQueue()
        # Static files are found by exact name in this table: a request path is never joined to a folder.
        self.static_files = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
        bound, port = self.server_address[:2]
        names = {"127.0.0.1", "localhost", f"[{bound}]" if ":" in bound else bound}
        self.allowed_hosts = {f"{name}:{port}".lower() for name in names}
        # A non-loopback address is served only after --allow-remote: its clients may call it by any name.
        self.any_host = not _is_loopback(bound)

    def host_allowed(self, host: str) -> bool:
        """Whether a request's ``Host`` header names this server."""
        return self.any_host or host.strip().lower() in self.allowed_hosts

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up is no error of the server: logged without a traceback."""
        err = sys.exc_info()[1]
        if isinstance(err, CLIENT_GONE):
            logger.debug("%s hung up: %s", client_address, err)
        else:
            logger.exception("request from %s failed", client_address)

    @property
    def url(self) -> str:
        """The page's address."""
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: PlayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def _answer(self, route: Callable[[str], tuple[str, bytes]]) -> None:
        length = self.headers.get("Content-Length", "0").strip() or "0"
        self._unread = int(length) if length.isdigit() else 0  # body bytes not read yet
        try:
            self._check_origin()
            status, (content_type, payload) = 200, route(urlsplit(self.path).path)
        except PlayError as err:
            status, content_type, payload = err.status, "application/json", _json({"error": err.message})
        except Exception as err:
            logger.exception("%s %s failed", self.command, self.path)
            status, content_type = 500, "application/json"
            payload = _json({"error": f"{type(err).__name__}: {err}"})
        if self._unread or not length.isdigit():
            self.close_connection = True  # what follows on this connection is the refused body
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(payload)
        except CLIENT_GONE as err:
            logger.debug("%s %s: the client hung up before the answer (%s)", self.command, self.path, err)
            self.close_connection = True
            return
        self._drain()

    def _drain(self) -> None:
        """Read and drop a refused body (up to ``DRAIN_BYTES``), so a client still sending it gets the answer
        rather than a reset connection."""
        left = min(self._unread, DRAIN_BYTES)
        with contextlib.suppress(OSError):
            self.connection.settimeout(DRAIN_TIMEOUT_S)
            while left > 0:
                chunk = self.rfile.read(min(left, 64 * 1024))
                if not chunk:
                    break
                left -= len(chunk)

    def _check_origin(self) -> None:
        """403 unless ``Host`` names this server and ``Origin``, when sent, is this server's origin."""
        host = self.headers.get("Host", "")
        if not self.server.host_allowed(host):
            raise PlayError(403, f"Host {host!r} is not this server; open {self.server.url}")
        origin = self.headers.get("Origin")
        if origin is not None and origin.strip().lower() != f"http://{host.strip().lower()}":
            raise PlayError(
                403, f"requests from {origin!r} are refused: only {self.server.url} drives this server"
            )

    def _get(self, path: str) -> tuple[str, bytes]:
        session, jobs = self.server.session, self.server.jobs
        if path in _GET_ROUTES:
            return "application/json", _json(jobs.call(getattr(session, _GET_ROUTES[path])))
        image = re.fullmatch(r"/frame/(\w+)\.png", path)
        if image:
            return "image/png", jobs.call(lambda: session.image_png(image.group(1)))
        if path in _POST_ROUTES:
            raise PlayError(405, f"{path} takes POST, not GET")
        name = "index.html" if path in ("/", "/index.html") else None
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
        file = self.server.static_files.get(name)
        if file is None:
            raise PlayError(404, f"not found: {path}")
        return _CONTENT_TYPES.get(file.suffix, "application/octet-stream"), file.read_bytes()

    def _post(self, path: str) -> tuple[str, bytes]:
        if path not in _POST_ROUTES:
            raise PlayError(405 if path in _GET_ROUTES else 404, f"no POST endpoint {path}")
        kwargs = _arguments(path, self._body())
        method = getattr(self.server.session, _POST_ROUTES[path][0])
        return "application/json", _json(self.server.jobs.call(lambda: method(**kwargs)))

    def _body(self) -> dict:
        length = self.headers.get("Content-Length", "0").strip() or "0"
        if not length.isdigit():
            raise PlayError(400, f"bad Content-Length header {length!r}")
        if int(length) > MAX_BODY_BYTES:
            raise PlayError(413, f"request body of {length} bytes is over the limit of {MAX_BODY_BYTES}")
        raw = self.rfile.read(int(length))
        self._unread = 0
        kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise PlayError(415, f"Content-Type must be application/json, got {kind or 'none'!r}")
        try:
            body = json.loads(raw) if raw.strip() else {}
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise PlayError(400, f"malformed JSON body: {err}") from None
        except RecursionError:
            raise PlayError(400, "malformed JSON body: nested too deeply") from None
        if not isinstance(body, dict):
            raise PlayError(400, f"the JSON body must be an object, got {type(body).__name__}")
        return body


def _is_loopback(host: str) -> bool:
    with contextlib.suppress(ValueError):  # a host name other than localhost counts as remote
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    return False


def check_host(host: str, allow_remote: bool = False) -> None:
    """Refuse a non-loopback ``host`` unless ``allow_remote`` (then warn): the page drives this process.

    Raises:
        ValueError: ``host`` is not a loopback address and ``allow_remote`` is false.
    """
    if _is_loopback(host):
        return
    if not allow_remote:
        raise ValueError(
            f"--host {host} is not a loopback address: anyone who can reach it could drive this server and "
            "write files; pass --allow-remote to listen there anyway"
        )
    logger.warning("listening on %s: anyone who can reach this address can drive the server", host)


def start_server(session: PlaySession, host: str = "127.0.0.1", port: int = 8765) -> PlayServer:
    """Serve ``session`` from a background thread (``port=0``: a free port). The caller then runs
    ``server.jobs.work(...)`` on the thread that built the session, and ``server.shutdown()`` at the end."""
    server = PlayServer(session, host, port)
    # A short poll interval makes shutdown() quick; requests are answered at once whatever it is.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server
