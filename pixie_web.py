"""pixie_web: a one-file web framework where each route chooses how it runs.

Copy this file into a project (it needs only the standard library) and write::

    from pixie_web import route, run, RouteType

    @route("/")
    def index(request):
        return "Hello, World!"

    @route("/cpu/<n:int>", RouteType.pool)   # runs in a worker process
    def fib(request, n):
        return {"fib": slow_fib(n)}

    if __name__ == "__main__":
        run()

Map of the sections below (each uses only what stands above it):

    Imports and accelerators   stdlib imports; uvloop/httptools/ujson/orjson, switch PIXIE_WEB_PURE
    Helpers                    status reasons, byte classes, JSON, dates, validation of header text
    Data structures            MultiDict, Headers (case-insensitive, multi-valued)
    Errors                     HTTPError, abort, redirect, the internal ProtocolError
    Routing                    RouteType, Route, Router (static dict + compiled dynamic matcher)
    Request                    Request (lazy parsing), query/cookie/form parsers, the pool snapshot
    Response                   Response and subclasses, cookies, converting handler return values
    Dispatcher and pool        ProcessType, proc_env, the worker entry point, the process pool manager
    HTTP/1.1 protocol          head parsers (pure / httptools), body framing, the asyncio.Protocol
    Application                App: hooks, middleware, error handlers, run(), graceful shutdown
    Test client                TestClient: the real protocol over an in-memory transport
    CLI and default app        python -m pixie_web, default_app and the module-level shortcuts
"""

# ---- Imports and accelerators ---------------------------------------------------------------

import argparse
import asyncio
import base64
import concurrent.futures
import email.utils
import functools
import hashlib
import hmac
import importlib
import inspect
import io
import json
import logging
import mimetypes
import multiprocessing
import os
import pickle
import re
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from enum import Enum
from http import HTTPStatus
from urllib.parse import quote, unquote_to_bytes, urlencode

__version__ = "0.1.0"
__all__ = [
    "App", "Router", "Route", "RouteType", "ProcessType", "proc_env",
    "Request", "Response", "JSONResponse", "RedirectResponse", "FileResponse", "StreamResponse",
    "HTTPError", "abort", "redirect", "MultiDict", "Headers", "TestClient", "TestResponse",
    "default_app", "route", "get", "post", "put", "patch", "delete", "error", "mount", "run",
    "url_for", "resource", "before_request", "after_request", "on_startup", "on_shutdown",
    "middleware", "ACCELERATORS", "__version__",
]

log = logging.getLogger("pixie_web")
access_log = logging.getLogger("pixie_web.access")

# PIXIE_WEB_PURE=1 turns every optional accelerator off; behaviour is identical either way.
PURE = os.environ.get("PIXIE_WEB_PURE", "") not in ("", "0")
uvloop = httptools = ujson = orjson = None
if not PURE:
    try:
        import uvloop
    except ImportError:
        uvloop = None
    try:
        import httptools
    except ImportError:
        httptools = None
    try:
        import orjson
    except ImportError:
        orjson = None
    if orjson is None:
        try:
            import ujson
        except ImportError:
            ujson = None

#: Names of the accelerators in use, e.g. ``["uvloop", "httptools", "orjson"]``.
ACCELERATORS = [name for name, module in
                (("uvloop", uvloop), ("httptools", httptools), ("orjson", orjson), ("ujson", ujson))
                if module is not None]


# ---- Helpers --------------------------------------------------------------------------------

STATUS_REASONS = {status.value: status.phrase for status in HTTPStatus}
_STATUS_LINES = {
    (version, code): f"HTTP/{version} {code} {reason}\r\n".encode("latin-1")
    for version in ("1.0", "1.1") for code, reason in STATUS_REASONS.items()
}

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TOKEN)
_STR_TOKEN_RE = re.compile(_TOKEN.decode())
# Control bytes are 0x00-0x1F except HTAB, and 0x7F (SPEC §12 fine print).
_CTL_BYTES_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CTL_STR_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_HEAD_CTL_RE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # CR and LF are checked apart


def _check_header_name(name):
    """Return ``name`` if it is a valid header field name, else raise ValueError."""
    if not isinstance(name, str) or not _STR_TOKEN_RE.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}: header names must be HTTP tokens")
    return name


def _check_header_value(value, what="header value"):
    """Return ``value`` as str if it holds no control bytes (CR, LF, NUL, ...), else raise."""
    value = value if isinstance(value, str) else str(value)
    if _CTL_STR_RE.search(value):
        raise ValueError(f"invalid {what} {value!r}: control characters (CR, LF, NUL...) are "
                         "not allowed in HTTP headers")
    return value


def _json_dumps_stdlib(data):
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


if orjson is not None:
    def json_dumps(data):
        """Serialise ``data`` to compact UTF-8 JSON bytes."""
        try:
            return orjson.dumps(data)
        except TypeError:  # types orjson refuses (e.g. int > 64 bit): keep stdlib behaviour
            return _json_dumps_stdlib(data)
    json_loads = orjson.loads
elif ujson is not None:
    def json_dumps(data):
        """Serialise ``data`` to compact UTF-8 JSON bytes."""
        try:
            return ujson.dumps(data, ensure_ascii=False, escape_forward_slashes=False).encode()
        except (TypeError, OverflowError):
            return _json_dumps_stdlib(data)
    json_loads = ujson.loads
else:
    json_dumps = _json_dumps_stdlib
    json_loads = json.loads


def http_date(timestamp=None):
    """Format a timestamp (default: now) as an RFC 9110 IMF-fixdate."""
    return email.utils.formatdate(timestamp, usegmt=True)


class _DateCache:
    """The ``Date`` header line, recomputed at most once per second."""

    __slots__ = ("second", "line")

    def __init__(self):
        self.second = -1
        self.line = b""

    def get(self):
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.line = b"Date: " + http_date(now).encode("ascii") + b"\r\n"
        return self.line


_date_cache = _DateCache()


def _is_coroutine_function(func):
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


# ---- Data structures ------------------------------------------------------------------------

class MultiDict:
    """A dict whose keys may hold several values.

    ``d[key]`` and ``d.get(key)`` return the last value; ``d.getall(key)`` (alias
    ``getlist``) returns every value in order; ``d.items()`` lists all pairs.
    """

    __slots__ = ("_data",)

    def __init__(self, pairs=()):
        self._data = {}
        if isinstance(pairs, (dict, MultiDict)):
            pairs = pairs.items()
        for key, value in pairs:
            self.add(key, value)

    def _key(self, key):
        return key

    def add(self, key, value):
        """Append a value under ``key``."""
        self._data.setdefault(self._key(key), []).append(value)

    def __getitem__(self, key):
        return self._data[self._key(key)][-1]

    def __setitem__(self, key, value):
        self._data[self._key(key)] = [value]

    def __delitem__(self, key):
        del self._data[self._key(key)]

    def __contains__(self, key):
        return self._key(key) in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def __eq__(self, other):
        return isinstance(other, MultiDict) and list(self.items()) == list(other.items())

    def get(self, key, default=None, type=None):
        """The last value of ``key`` (converted with ``type`` if given), or ``default``."""
        values = self._data.get(self._key(key))
        if not values:
            return default
        if type is None:
            return values[-1]
        try:
            return type(values[-1])
        except (ValueError, TypeError):
            return default

    def getall(self, key):
        """Every value of ``key``, in the order they were added."""
        return list(self._data.get(self._key(key), ()))

    getlist = getall

    def keys(self):
        return self._data.keys()

    def values(self):
        return [values[-1] for values in self._data.values()]

    def items(self):
        """All (key, value) pairs, repeated keys included."""
        return [(key, value) for key, values in self._data.items() for value in values]

    def pop(self, key, default=None):
        values = self._data.pop(self._key(key), None)
        return values[-1] if values else default

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, other=(), **kwargs):
        pairs = other.items() if hasattr(other, "items") else other
        for key, value in list(pairs) + list(kwargs.items()):
            self[key] = value

    def to_dict(self):
        """A plain dict of the last values."""
        return {key: values[-1] for key, values in self._data.items()}

    def __repr__(self):
        return f"{type(self).__name__}({self.items()!r})"


class Headers(MultiDict):
    """Case-insensitive, multi-valued HTTP headers that refuse control characters.

    Names keep the spelling they were first given; lookups ignore case.
    """

    __slots__ = ("_names",)

    def __init__(self, pairs=()):
        self._names = {}
        super().__init__(pairs)

    def _key(self, key):
        return key.lower()

    def add(self, key, value):
        _check_header_name(key)
        value = _check_header_value(value)
        lower = key.lower()
        self._names.setdefault(lower, key)
        self._data.setdefault(lower, []).append(value)

    def __setitem__(self, key, value):
        _check_header_name(key)
        lower = key.lower()
        self._names[lower] = key
        self._data[lower] = [_check_header_value(value)]

    def __delitem__(self, key):
        lower = key.lower()
        del self._data[lower]
        self._names.pop(lower, None)

    def pop(self, key, default=None):
        self._names.pop(key.lower(), None)
        return super().pop(key, default)

    def __iter__(self):
        return iter(self._names[lower] for lower in self._data)

    def keys(self):
        return [self._names[lower] for lower in self._data]

    def items(self):
        names = self._names
        return [(names[lower], value) for lower, values in self._data.items() for value in values]

    @classmethod
    def _from_trusted(cls, lowered_pairs):
        """Build from already validated ``(lower_name, value)`` pairs (request parsing)."""
        headers = cls.__new__(cls)
        data, names = {}, {}
        for name, value in lowered_pairs:
            if name in data:
                data[name].append(value)
            else:
                data[name] = [value]
                names[name] = name
        headers._data, headers._names = data, names
        return headers


# ---- Errors ---------------------------------------------------------------------------------

class HTTPError(Exception):
    """Raise to end a request with an HTTP status: ``raise HTTPError(404, "no such user")``.

    ``body`` may be anything a handler could return; ``headers`` are added to the response.
    """

    def __init__(self, status=500, body=None, headers=None, *, code=None):
        status = code if code is not None else status
        super().__init__(status, body)
        self.status = int(status)
        self.body = body
        self.headers = headers

    @property
    def reason(self):
        return STATUS_REASONS.get(self.status, "Unknown")

    def __reduce__(self):  # picklable across the process pool
        return (_rebuild_http_error, (type(self), self.status, self.body, self.headers))

    def __str__(self):
        return f"{self.status} {self.reason}" + (f": {self.body}" if self.body else "")


def _rebuild_http_error(cls, status, body, headers):
    error = cls.__new__(cls)
    HTTPError.__init__(error, status, body, headers)
    return error


class _Redirect(HTTPError):
    """The exception behind ``redirect()``: carries a validated ``Location``."""

    def __init__(self, status=303, body=None, headers=None, *, code=None):
        super().__init__(status, body, headers, code=code)


def abort(status=500, text=None):
    """End the request now with ``status`` and an optional message."""
    raise HTTPError(status, text)


def redirect(url, status=303):
    """End the request now with a redirect to ``url`` (303 See Other by default)."""
    url = _check_header_value(url, "redirect URL")
    raise _Redirect(status, "", {"Location": url})


class ProtocolError(Exception):
    """A request the server refuses before any handler sees it (framing, limits, syntax)."""

    def __init__(self, status, message=""):
        super().__init__(message or STATUS_REASONS.get(status, ""))
        self.status = status
        self.message = message


# ---- Routing --------------------------------------------------------------------------------

class RouteType(Enum):
    """How a route's handler runs."""

    sync = "sync"        #: a plain function called on the event loop thread
    asnc = "asnc"        #: an ``async def`` awaited on the event loop
    thread = "thread"    #: a plain function run in the thread pool
    pool = "pool"        #: a module-level function run in a worker process


# name -> (regex, converter to Python, converter to URL)
def _quote_segment(value):
    return quote(str(value), safe="")


def _quote_path(value):
    return quote(str(value), safe="/")


_WILDCARD_FILTERS = {
    "": (r"[^/]+", None, _quote_segment),
    "int": (r"-?[0-9]+", int, _quote_segment),
    "float": (r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", float, _quote_segment),
    "path": (r".+?", None, _quote_path),
}
_WILDCARD_RE = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_]+)(?::((?:\\.|[^\\>])*))?)?>")
# A capturing group in a user regex, to be made non-capturing (an escaped "(" is left alone).
_CAPTURING_GROUP_RE = re.compile(r"(\\*)(\(\?P<[^>]+>|\((?!\?))")


def _non_capturing(regex):
    def replace(match):
        backslashes = match.group(1)
        if len(backslashes) % 2:
            return match.group(0)
        return backslashes + "(?:"
    return _CAPTURING_GROUP_RE.sub(replace, regex)


class _Pattern:
    """One path pattern (``/user/<id:int>``) and the routes registered on it, by method."""

    def __init__(self, path):
        self.path = path
        self.routes = {}              # method -> Route
        self.converters = []          # (wildcard name, to_python or None)
        self.builder = []             # literal strings and (name, to_url) pairs
        regex_parts, position = [], 0
        for match in _WILDCARD_RE.finditer(path):
            literal = path[position:match.start()]
            regex_parts.append(re.escape(literal))
            self.builder.append(literal)
            name, kind, config = match.group(1), match.group(2) or "", match.group(3)
            if kind == "re":
                regex, to_python, to_url = _non_capturing(config or r"[^/]+"), None, _quote_segment
            elif kind in _WILDCARD_FILTERS:
                regex, to_python, to_url = _WILDCARD_FILTERS[kind]
            else:
                raise ValueError(f"unknown wildcard filter {kind!r} in route {path!r}: "
                                 "use int, float, path or re:REGEX")
            if any(name == known for known, _ in self.converters):
                raise ValueError(f"wildcard {name!r} appears twice in route {path!r}")
            regex_parts.append((name, regex))
            self.converters.append((name, to_python))
            self.builder.append((name, to_url))
            position = match.end()
        self.builder.append(path[position:])
        regex_parts.append(re.escape(path[position:]))
        self.is_static = not self.converters
        self.regex_parts = regex_parts
        first = path.lstrip("/").split("/", 1)[0]
        self.first_segment = None if "<" in first else first

    def regex(self, group_prefix):
        """The pattern as a regex whose groups are named ``{group_prefix}_{index}``."""
        out, index = [], 0
        for part in self.regex_parts:
            if isinstance(part, tuple):
                out.append(f"(?P<{group_prefix}_{index}>{part[1]})")
                index += 1
            else:
                out.append(part)
        return "".join(out)

    def build(self, params):
        parts, used = [], set()
        for piece in self.builder:
            if isinstance(piece, tuple):
                name, to_url = piece
                if name not in params:
                    raise KeyError(f"url_for: route {self.path!r} needs a value for {name!r}")
                parts.append(to_url(params[name]))
                used.add(name)
            else:
                parts.append(piece)
        url = "".join(parts)
        extra = [(key, value) for key, value in params.items() if key not in used]
        return url + ("?" + urlencode(extra, doseq=True) if extra else "")


class _Bucket:
    """Dynamic patterns sharing a first segment, matched by one compiled alternation."""

    __slots__ = ("patterns", "_compiled", "_slots")

    def __init__(self):
        self.patterns = []
        self._compiled = None
        self._slots = None

    def add(self, pattern):
        self.patterns.append(pattern)
        self._compiled = None

    def _compile(self):
        alternatives, slots = [], {}
        for number, pattern in enumerate(self.patterns):
            group = f"r{number}"
            alternatives.append(f"(?P<{group}>{pattern.regex(group)})")
            slots[group] = (pattern, [f"{group}_{i}" for i in range(len(pattern.converters))])
        self._compiled = re.compile("|".join(alternatives) + r"\Z", re.DOTALL)
        self._slots = slots

    def match(self, path):
        """The first pattern matching ``path`` and its raw group values, or None."""
        if self._compiled is None:
            self._compile()
        found = self._compiled.match(path)
        if found is None:
            return None
        pattern, groups = self._slots[found.lastgroup]
        return pattern, [found.group(name) for name in groups]

    def match_all(self, path):
        """Every matching pattern in order (slow path, used for 405s and method fallbacks)."""
        results = []
        for pattern in self.patterns:
            found = re.compile(pattern.regex("g") + r"\Z", re.DOTALL).match(path)
            if found:
                results.append((pattern, list(found.groups())))
        return results


class Route:
    """One handler for one method on one path."""

    __slots__ = ("method", "path", "name", "route_type", "handler", "timeout", "stream_body",
                 "owner", "pattern", "__weakref__")

    def __init__(self, method, path, handler, route_type, name=None, timeout=None,
                 stream_body=False, owner=None):
        self.method = method
        self.path = path
        self.handler = handler
        self.route_type = route_type
        self.name = name
        self.timeout = timeout
        self.stream_body = stream_body
        self.owner = owner
        self.pattern = None

    def __repr__(self):
        return f"<Route {self.method} {self.path} {self.route_type.name} {self.name or ''}>"


def _check_route_type(handler, route_type, path):
    """Infer or validate the route type of ``handler``; raise TypeError on a mismatch."""
    is_async = _is_coroutine_function(handler)
    if route_type is None:
        return RouteType.asnc if is_async else RouteType.sync
    if isinstance(route_type, str):
        try:
            route_type = RouteType[route_type]
        except KeyError:
            raise ValueError(f"unknown route type {route_type!r}: use one of "
                             f"{', '.join(t.name for t in RouteType)}") from None
    name = getattr(handler, "__qualname__", repr(handler))
    if is_async and route_type is not RouteType.asnc:
        raise TypeError(f"route {path!r}: {name} is async def but declared RouteType."
                        f"{route_type.name}: {route_type.name} routes must be plain functions")
    if not is_async and route_type is RouteType.asnc:
        raise TypeError(f"route {path!r}: {name} is a plain function but declared RouteType.asnc: "
                        "use async def, or RouteType.sync/thread/pool")
    if route_type is RouteType.pool:
        qualname = getattr(handler, "__qualname__", "")
        if (not inspect.isfunction(handler) or "<" in qualname or "." in qualname
                or getattr(handler, "__module__", None) is None):
            raise TypeError(f"route {path!r}: {name} cannot be a pool route: pool handlers are "
                            "sent to worker processes by importable name, so they must be "
                            "module-level functions (no lambda, closure, nested function or method)")
    return route_type


class Router:
    """A table of routes with the decorators to fill it; also a mountable route group.

    ``Router(prefix="/api")`` groups routes under a prefix; ``app.mount("/v1", router)``
    adds them to an app.
    """

    def __init__(self, prefix=""):
        self.prefix = prefix.rstrip("/")
        self._static = {}                  # path -> _Pattern
        self._buckets = {}                 # first literal segment -> _Bucket
        self._wild_bucket = _Bucket()      # patterns whose first segment is a wildcard
        self._patterns = {}                # path -> _Pattern
        self._routes = []                  # every Route, registration order
        self._names = {}                   # name -> Route
        self._mounted_on = []              # (parent router, prefix) that copy our new routes

    # -- registration --

    def route(self, path, route_type=None, methods=("GET",), name=None, timeout=None,
              stream_body=False, action=None):
        """Decorator registering a handler for ``path`` (see the module docs)."""
        if action is not None:
            methods = action
        if isinstance(methods, str):
            methods = [methods]
        methods = [method.upper() for method in methods]
        for method in methods:
            if not _STR_TOKEN_RE.fullmatch(method):
                raise ValueError(f"invalid HTTP method {method!r}")

        def decorator(handler):
            kind = _check_route_type(handler, route_type, path)
            if stream_body and kind is not RouteType.asnc:
                raise TypeError(f"route {path!r}: stream_body=True needs an async def handler")
            for method in methods:
                self.add_route(Route(method, self.prefix + path, handler, kind,
                                     name=name or handler.__name__, timeout=timeout,
                                     stream_body=stream_body, owner=self))
            return handler
        return decorator

    def get(self, path, route_type=None, **options):
        """Shortcut for ``route(path, route_type, methods="GET", ...)``."""
        return self.route(path, route_type, methods="GET", **options)

    def post(self, path, route_type=None, **options):
        """Shortcut for ``route(path, route_type, methods="POST", ...)``."""
        return self.route(path, route_type, methods="POST", **options)

    def put(self, path, route_type=None, **options):
        """Shortcut for ``route(path, route_type, methods="PUT", ...)``."""
        return self.route(path, route_type, methods="PUT", **options)

    def patch(self, path, route_type=None, **options):
        """Shortcut for ``route(path, route_type, methods="PATCH", ...)``."""
        return self.route(path, route_type, methods="PATCH", **options)

    def delete(self, path, route_type=None, **options):
        """Shortcut for ``route(path, route_type, methods="DELETE", ...)``."""
        return self.route(path, route_type, methods="DELETE", **options)

    def add_route(self, route):
        """Register a Route object (the decorators end here)."""
        if not route.path.startswith("/"):
            raise ValueError(f"route path {route.path!r} must start with '/'")
        pattern = self._patterns.get(route.path)
        if pattern is None:
            pattern = self._patterns[route.path] = _Pattern(route.path)
            if pattern.is_static:
                self._static[route.path] = pattern
            elif pattern.first_segment is None:
                self._wild_bucket.add(pattern)
            else:
                self._buckets.setdefault(pattern.first_segment, _Bucket()).add(pattern)
        replaced = pattern.routes.get(route.method)
        if replaced is not None:
            self._routes.remove(replaced)
        pattern.routes[route.method] = route
        route.pattern = pattern
        self._routes.append(route)
        if route.name:
            self._names[route.name] = route
        for parent, prefix in self._mounted_on:
            parent._add_mounted(prefix, route)
        return route

    def _add_mounted(self, prefix, route):
        copy = Route(route.method, prefix + route.path, route.handler, route.route_type,
                     name=route.name, timeout=route.timeout, stream_body=route.stream_body,
                     owner=route.owner)
        self.add_route(copy)

    def mount(self, prefix, other):
        """Serve every route of ``other`` (an App or Router) under ``prefix``.

        Routes added to ``other`` later are served too; ``other``'s error handlers and
        hooks apply to its own routes.
        """
        prefix = self.prefix + prefix.rstrip("/")
        for existing in list(other._routes):
            self._add_mounted(prefix, existing)
        other._mounted_on.append((self, prefix))
        return other

    def resource(self, prefix, resource):
        """Register a RESTful resource: ``list``/``create`` on ``prefix`` and
        ``get``/``update``/``delete`` on ``prefix/<id>`` (absent methods are not routed)."""
        if inspect.isclass(resource):
            resource = resource()
        base = prefix.rstrip("/")
        label = base.strip("/").replace("/", ".") or "root"
        plan = [("list", base or "/", ("GET",)), ("create", base or "/", ("POST",)),
                ("get", base + "/<id>", ("GET",)), ("update", base + "/<id>", ("PUT", "PATCH")),
                ("delete", base + "/<id>", ("DELETE",))]
        for action, path, methods in plan:
            handler = getattr(resource, action, None)
            if callable(handler):
                self.route(path, methods=methods, name=f"{label}.{action}")(handler)
        return resource

    # -- lookup --

    def routes(self):
        """Every registered Route (one per method), in registration order."""
        return list(self._routes)

    def url_for(self, name, /, **params):
        """Build the URL of the route called ``name``; extra params become the query string."""
        route = self._names.get(name)
        if route is None:
            raise KeyError(f"url_for: no route named {name!r}")
        return route.pattern.build(params)

    def _convert(self, pattern, values):
        params = {}
        for (name, to_python), value in zip(pattern.converters, values):
            if to_python is not None:
                try:
                    value = to_python(value)
                except (ValueError, OverflowError):
                    raise HTTPError(400, "path has the wrong format") from None
            params[name] = value
        return params

    def _dynamic_matches(self, path, first_only):
        first = path[1:].split("/", 1)[0]
        buckets = [bucket for bucket in (self._buckets.get(first), self._wild_bucket) if bucket]
        if first_only:
            for bucket in buckets:
                found = bucket.match(path)
                if found is not None:
                    return [found]
            return []
        return [found for bucket in buckets for found in bucket.match_all(path)]

    def find(self, method, path):
        """Find the route for ``method`` and ``path``.

        Returns ``(route, params, allowed)``: ``route`` is None when nothing matches
        (``allowed`` is None: 404) or when the path exists without this method
        (``allowed`` lists the methods for 405 / OPTIONS).
        """
        pattern = self._static.get(path)
        if pattern is not None:
            routes = pattern.routes
            route = routes.get(method) or (method == "HEAD" and routes.get("GET")) or None
            if route is not None:
                return route, {}, None
            return None, {}, _allowed_methods(routes)
        matches = self._dynamic_matches(path, first_only=True)
        if not matches:
            return None, None, None
        pattern, values = matches[0]
        route = pattern.routes.get(method) or (method == "HEAD" and pattern.routes.get("GET"))
        if route:
            return route, self._convert(pattern, values), None
        allowed = set()
        for pattern, values in self._dynamic_matches(path, first_only=False):
            route = pattern.routes.get(method) or (method == "HEAD" and pattern.routes.get("GET"))
            if route:
                return route, self._convert(pattern, values), None
            allowed.update(_allowed_methods(pattern.routes))
        return None, {}, sorted(allowed)


def _allowed_methods(routes):
    allowed = set(routes) | {"OPTIONS"}
    if "GET" in allowed:
        allowed.add("HEAD")
    return sorted(allowed)


# ---- Request --------------------------------------------------------------------------------

_COOKIE_OCTETS_RE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_COOKIE_ESCAPE_RE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))", re.DOTALL)
_QUOTED_COOKIE_RE = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*)"')


def _unquote_cookie(quoted):
    """Undo http.cookies-style quoting in linear time (CVE-2024-7592)."""
    raw = _COOKIE_ESCAPE_RE.sub(
        lambda m: chr(int(m.group(1), 8)) if m.group(1) else m.group(2), quoted)
    try:  # octal escapes encode UTF-8 bytes one by one
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def parse_cookie_header(header):
    """Parse a ``Cookie`` header into a dict, pair by pair.

    A malformed pair is skipped without losing the others; nameless pairs are dropped.
    """
    cookies = {}
    for pair in header.split(";"):
        name, has_value, value = pair.partition("=")
        name = name.strip(" \t")
        if not has_value or not name or not _STR_TOKEN_RE.fullmatch(name):
            continue
        value = value.strip(" \t")
        if value.startswith('"'):
            quoted = _QUOTED_COOKIE_RE.fullmatch(value)
            if quoted is None:
                continue
            value = _unquote_cookie(quoted.group(1))
        elif not _COOKIE_OCTETS_RE.fullmatch(value):
            continue
        cookies[name] = value
    return cookies


def parse_query_string(query_string, max_params=None, status=400):
    """Parse ``a=1&b=2`` into a MultiDict; only ``&`` separates pairs (CVE-2021-23336)."""
    result = MultiDict()
    if not query_string:
        return result
    pairs = query_string.split("&", max_params) if max_params else query_string.split("&")
    if max_params and len(pairs) > max_params:
        raise HTTPError(status, f"too many parameters (more than {max_params})")
    for pair in pairs:
        if not pair:
            continue
        key, _, value = pair.partition("=")
        result.add(_unquote_plus(key), _unquote_plus(value))
    return result


def _unquote_plus(text):
    if "%" not in text and "+" not in text:
        return text
    return unquote_to_bytes(text.replace("+", " ")).decode("utf-8", "replace")


def _parse_media_type(value):
    """Split ``text/html; charset=utf-8`` into ``("text/html", {"charset": "utf-8"})``."""
    media_type, *params = value.split(";")
    options = {}
    for param in params:
        key, _, val = param.strip().partition("=")
        options[key.strip().lower()] = val.strip().strip('"')
    return media_type.strip().lower(), options


class _BodyStream:
    """Body chunks of a ``stream_body=True`` request, fed by the protocol as they arrive."""

    def __init__(self, on_drain=None):
        self._chunks = deque()
        self._buffered = 0
        self._done = False
        self._error = None
        self._waiter = None
        self._on_drain = on_drain

    def feed(self, data):
        self._chunks.append(bytes(data))
        self._buffered += len(data)
        self._wake()

    def finish(self, error=None):
        self._done = True
        self._error = error
        self._wake()

    @property
    def buffered(self):
        return self._buffered

    def _wake(self):
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self):
        return self

    async def __anext__(self):
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._done:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._on_drain is not None:
            self._on_drain(self._buffered)
        return chunk


class Request:
    """One HTTP request. Everything beyond the request line is parsed only when read."""

    __slots__ = ("method", "raw_path", "path", "query_string", "http_version", "_header_pairs",
                 "_headers", "_body", "remote_addr", "scheme", "app", "route", "path_params", "_state",
                 "_query", "_cookies", "_form", "_json", "_stream", "_host", "session",
                 "max_query_params", "__weakref__")

    def __init__(self, method, raw_path, path, query_string, http_version, header_pairs,
                 body=b"", remote_addr="", scheme="http", host=None, app=None):
        self.method = method
        self.raw_path = raw_path
        self.path = path
        self.query_string = query_string
        self.http_version = http_version
        self._header_pairs = header_pairs     # [(lower-case name, value)] already validated
        self._headers = None
        self._body = body
        self.remote_addr = remote_addr
        self.scheme = scheme
        self._host = host
        self.app = app
        self.route = None
        self.path_params = {}
        self._state = self._query = self._cookies = self._form = self._json = None
        self._stream = None
        self.session = None
        self.max_query_params = app.max_query_params if app is not None else 1000

    def __repr__(self):
        return f"<Request {self.method} {self.raw_path}>"

    # -- the original pixie_web names --
    @property
    def verb(self):
        """Alias of ``method``."""
        return self.method

    @property
    def protocol(self):
        """``"HTTP/1.1"`` or ``"HTTP/1.0"``."""
        return "HTTP/" + self.http_version

    @property
    def raw_data(self):
        """Alias of ``body``."""
        return self.body

    # -- headers and friends --
    @property
    def headers(self):
        """Case-insensitive multi-dict of the request headers."""
        if self._headers is None:
            self._headers = Headers._from_trusted(self._header_pairs)
        return self._headers

    def _header(self, lower_name, default=None):
        for name, value in self._header_pairs:
            if name == lower_name:
                return value
        return default

    @property
    def state(self):
        """A per-request dict for middleware and hooks."""
        if self._state is None:
            self._state = {}
        return self._state

    @property
    def content_type(self):
        """The ``Content-Type`` header ("" when absent)."""
        return self._header("content-type", "")

    @property
    def content_length(self):
        """The body length in bytes (None when streamed and not yet known)."""
        value = self._header("content-length")
        if value is not None:
            return int(value)
        return None if self._stream is not None else len(self._body)

    @property
    def host(self):
        """The ``Host`` of the request (from the header or an absolute-form target)."""
        return self._host if self._host is not None else self._header("host", "")

    @property
    def url(self):
        """The full URL as the client asked for it."""
        query = "?" + self.query_string if self.query_string else ""
        return f"{self.scheme}://{self.host}{self.raw_path}{query}"

    @property
    def query(self):
        """The query string as a MultiDict."""
        if self._query is None:
            self._query = parse_query_string(self.query_string, self.max_query_params)
        return self._query

    @property
    def cookies(self):
        """Request cookies as a dict (malformed pairs are skipped)."""
        if self._cookies is None:
            self._cookies = {}
            for name, value in self._header_pairs:
                if name == "cookie":
                    self._cookies.update(parse_cookie_header(value))
        return self._cookies

    def get_cookie(self, name, default=None, secret=None):
        """A cookie's value; with ``secret``, only a valid signed cookie (else ``default``)."""
        value = self.cookies.get(name)
        if value is None:
            return default
        if secret is not None:
            decoded = _verify_signed_cookie(name, value, secret)
            return default if decoded is _INVALID else decoded
        return value

    # -- body --
    @property
    def body(self):
        """The whole request body as bytes."""
        if self._stream is not None:
            raise RuntimeError("this route has stream_body=True: read it with "
                               "'async for chunk in request.stream()'")
        return self._body

    def stream(self):
        """Async iterator over body chunks (routes declared with ``stream_body=True``)."""
        if self._stream is None:
            stream = _BodyStream()
            if self._body:
                stream.feed(self._body)
            stream.finish()
            return stream
        return self._stream

    @property
    def text(self):
        """The body decoded with the charset of ``Content-Type`` (UTF-8 by default)."""
        _, options = _parse_media_type(self.content_type)
        try:
            return self.body.decode(options.get("charset") or "utf-8")
        except (UnicodeDecodeError, LookupError):
            raise HTTPError(400, "request body is not valid text in its charset") from None

    @property
    def json(self):
        """The parsed JSON body when the media type is exactly application/json, else None.

        Malformed JSON raises HTTPError(400).
        """
        if self._json is None:
            media_type, _ = _parse_media_type(self.content_type)
            if media_type != "application/json" or not self.body:
                return None
            try:
                self._json = (json_loads(self.body),)
            except (ValueError, RecursionError, TypeError):
                raise HTTPError(400, "request body is not valid JSON") from None
        return self._json[0]

    @property
    def form(self):
        """Fields of an ``application/x-www-form-urlencoded`` body as a MultiDict."""
        if self._form is None:
            media_type, _ = _parse_media_type(self.content_type)
            if media_type == "application/x-www-form-urlencoded":
                try:
                    text = self.body.decode("ascii")
                except UnicodeDecodeError:
                    raise HTTPError(400, "urlencoded form data must be ASCII") from None
                self._form = parse_query_string(text, self.max_query_params, status=413)
            else:
                self._form = MultiDict()
        return self._form

    @property
    def params(self):
        """Query and form fields together (form values come last)."""
        combined = MultiDict(self.query.items())
        for key, value in self.form.items():
            combined.add(key, value)
        return combined

    # -- the compact snapshot shipped to pool workers --
    def _snapshot(self):
        return (self.method, self.raw_path, self.path, self.query_string, self.http_version,
                self._header_pairs, self._body, self.remote_addr, self.scheme, self._host,
                self.max_query_params)

    @classmethod
    def _from_snapshot(cls, snapshot):
        (method, raw_path, path, query_string, http_version, header_pairs, body, remote_addr,
         scheme, host, max_query_params) = snapshot
        request = cls(method, raw_path, path, query_string, http_version, header_pairs, body,
                      remote_addr, scheme, host)
        request.max_query_params = max_query_params
        return request


# ---- Response -------------------------------------------------------------------------------

_INVALID = object()
_SAMESITE_VALUES = {"lax": "Lax", "strict": "Strict", "none": "None"}
_COOKIE_ATTRIBUTE_RE = re.compile(r"[\x21-\x3a\x3c-\x7e]*")  # visible ASCII except ";"
MAX_COOKIE_SIZE = 4093


def _sign(secret, message):
    key = secret.encode() if isinstance(secret, str) else secret
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=")


def _make_signed_cookie(name, value, secret, max_age=None):
    """``v1.<payload>.<signature>``: HMAC-SHA256 over the cookie name and a JSON payload."""
    expires = int(time.time() + max_age) if max_age is not None else 0
    payload = base64.urlsafe_b64encode(json.dumps([value, expires]).encode()).rstrip(b"=")
    signature = _sign(secret, name.encode() + b"|" + payload)
    return "v1." + payload.decode() + "." + signature.decode()


def _verify_signed_cookie(name, cookie, secret):
    """The value inside a signed cookie, or ``_INVALID`` when tampered, foreign or expired."""
    version, _, rest = cookie.partition(".")
    payload, _, signature = rest.partition(".")
    if version != "v1" or not payload or not signature:
        return _INVALID
    expected = _sign(secret, name.encode() + b"|" + payload.encode())
    if not hmac.compare_digest(expected, signature.encode()):
        return _INVALID
    try:
        value, expires = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return _INVALID
    if expires and expires < time.time():
        return _INVALID
    return value


def _quote_cookie_value(value):
    if _COOKIE_OCTETS_RE.fullmatch(value):
        return value
    escaped = []
    for char in value:
        if char in '"\\':
            escaped.append("\\" + char)
        elif 0x20 <= ord(char) < 0x7f:
            escaped.append(char)
        else:
            escaped.extend(f"\\{byte:03o}" for byte in char.encode("utf-8"))
    return '"' + "".join(escaped) + '"'


def _format_set_cookie(name, value, max_age=None, expires=None, path="/", domain=None,
                       secure=False, httponly=True, samesite="Lax"):
    """One ``Set-Cookie`` value; refuses anything that could inject attributes or lines."""
    if not isinstance(name, str) or not _STR_TOKEN_RE.fullmatch(name):
        raise ValueError(f"invalid cookie name {name!r}: cookie names must be HTTP tokens")
    value = _check_header_value("" if value is None else str(value), "cookie value")
    if ";" in value:
        raise ValueError(f"invalid cookie value {value!r}: ';' is not allowed")
    parts = [f"{name}={_quote_cookie_value(value)}"]
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if expires is not None:
        if isinstance(expires, (int, float)):
            expires = http_date(expires)
        elif hasattr(expires, "timestamp"):
            expires = http_date(expires.timestamp())
        parts.append(f"Expires={expires}")
    for attribute, text in (("Path", path), ("Domain", domain)):
        if text is not None:
            if not _COOKIE_ATTRIBUTE_RE.fullmatch(str(text)):
                raise ValueError(f"invalid cookie {attribute} {text!r}: control characters, "
                                 "spaces and ';' are not allowed")
            parts.append(f"{attribute}={text}")
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if samesite:
        canonical = _SAMESITE_VALUES.get(str(samesite).lower())
        if canonical is None:
            raise ValueError(f"invalid SameSite {samesite!r}: use Lax, Strict or None")
        parts.append(f"SameSite={canonical}")
    cookie = "; ".join(parts)
    if len(cookie) > MAX_COOKIE_SIZE:
        log.warning("cookie %r is %d bytes; browsers may ignore cookies over %d bytes",
                    name, len(cookie), MAX_COOKIE_SIZE)
    return cookie


class Response:
    """An HTTP response: ``Response(body="", status=200, headers=None, content_type=None,
    cookies=None)`` (``code=`` is accepted for ``status``)."""

    default_content_type = None

    def __init__(self, body="", status=200, headers=None, content_type=None, cookies=None,
                 *, code=None):
        self.body = body
        self.status = int(code if code is not None else status)
        self._headers = None
        if headers:
            self.headers.update(headers.items() if hasattr(headers, "items") else headers)
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        if cookies:
            for name, value in cookies.items():
                self.set_cookie(name, value)

    @property
    def headers(self):
        """Case-insensitive, multi-valued response headers."""
        if self._headers is None:
            self._headers = Headers()
        return self._headers

    @property
    def content_type(self):
        return self._headers.get("Content-Type") if self._headers else None

    @content_type.setter
    def content_type(self, value):
        self.headers["Content-Type"] = value

    def set_cookie(self, name, value, max_age=None, expires=None, path="/", domain=None,
                   secure=False, httponly=True, samesite="Lax", secret=None):
        """Add a ``Set-Cookie`` header; with ``secret`` the value (any JSON data) is signed."""
        if secret is not None:
            value = _make_signed_cookie(name, value, secret, max_age)
        self.headers.add("Set-Cookie", _format_set_cookie(
            name, value, max_age, expires, path, domain, secure, httponly, samesite))

    def delete_cookie(self, name, path="/", domain=None):
        """Tell the browser to drop a cookie."""
        self.set_cookie(name, "", max_age=0, expires=0, path=path, domain=domain)

    def __repr__(self):
        return f"<{type(self).__name__} {self.status}>"


class JSONResponse(Response):
    """``JSONResponse(data, status=200, headers=None)``: ``data`` serialised as JSON."""

    def __init__(self, data=None, status=200, headers=None, *, code=None, content_type=None):
        super().__init__(json_dumps(data), status, headers,
                         content_type or "application/json", code=code)


class RedirectResponse(Response):
    """``RedirectResponse(url, status=303)``."""

    def __init__(self, url, status=303, headers=None, *, code=None):
        super().__init__(b"", status, headers, code=code)
        self.headers["Location"] = _check_header_value(url, "redirect URL")


class StreamResponse(Response):
    """``StreamResponse(iterable, status=200, content_type="application/octet-stream",
    headers=None)``: an iterable or async iterable of str/bytes sent as it is produced."""

    def __init__(self, iterable, status=200, content_type="application/octet-stream",
                 headers=None, *, code=None):
        super().__init__(iterable, status, headers, content_type, code=code)


_FILE_CHUNK = 256 * 1024


class FileResponse(Response):
    """``FileResponse(path, content_type=None, download=None, headers=None)``.

    ``download=True`` asks the browser to save the file under its base name,
    ``download="name.ext"`` under that name.
    """

    def __init__(self, path, content_type=None, download=None, headers=None, status=200):
        super().__init__(None, status, headers)
        self.path = os.fspath(path)
        if content_type is None:
            guessed, encoding = mimetypes.guess_type(self.path)
            content_type = guessed or "application/octet-stream"
            if content_type.startswith("text/") and "charset" not in content_type:
                content_type += "; charset=utf-8"
        self.headers["Content-Type"] = content_type
        if download:
            name = os.path.basename(self.path) if download is True else str(download)
            self.headers["Content-Disposition"] = _content_disposition(name)

    def _open(self):
        return open(self.path, "rb")


def _content_disposition(filename):
    """``attachment; filename="..."`` with an ASCII fallback and RFC 5987 ``filename*``."""
    filename = os.path.basename(filename.replace("\\", "/"))
    fallback = "".join(c if 0x20 <= ord(c) < 0x7f and c not in '"\\' else "_" for c in filename)
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += "; filename*=UTF-8''" + quote(filename, safe="")
    return value


def _is_binary_file(obj):
    return (isinstance(obj, (io.BufferedIOBase, io.RawIOBase))
            or (hasattr(obj, "read") and "b" in getattr(obj, "mode", "")))


def to_response(result):
    """Convert anything a handler may return into a Response (SPEC §3's table)."""
    if isinstance(result, Response):
        return result
    if isinstance(result, str):
        return Response(result.encode("utf-8"), 200, content_type="text/html; charset=utf-8")
    if isinstance(result, (bytes, bytearray, memoryview)):
        return Response(bytes(result), 200, content_type="application/octet-stream")
    if isinstance(result, (dict, list)):
        return Response(json_dumps(result), 200, content_type="application/json")
    if result is None:
        return Response(None, 204)
    if isinstance(result, tuple) and 2 <= len(result) <= 3:
        response = to_response(result[0])
        response.status = int(result[1])
        if len(result) == 3 and result[2]:
            extra = result[2]
            for name, value in (extra.items() if hasattr(extra, "items") else extra):
                response.headers[name] = value
        return response
    if _is_binary_file(result):
        return StreamResponse(result)
    if hasattr(result, "__aiter__") or hasattr(result, "__iter__"):
        return StreamResponse(result, content_type="text/html; charset=utf-8")
    raise TypeError(f"a handler returned {type(result).__name__}, which pixie_web cannot send: "
                    "return str, bytes, dict, list, None, a Response, a tuple or an iterable")


def error_response(status, detail=None, debug_text=None, headers=None):
    """The plain-text error page: ``"404 Not Found"`` plus an optional detail line."""
    reason = STATUS_REASONS.get(status, "Error")
    lines = [f"{status} {reason}"]
    if detail:
        lines.append(str(detail))
    if debug_text:
        lines.append("")
        lines.append(debug_text)
    response = Response(("\n".join(lines) + "\n").encode("utf-8", "replace"), status,
                        content_type="text/plain; charset=utf-8")
    if headers:
        for name, value in (headers.items() if hasattr(headers, "items") else headers):
            response.headers[name] = value
    return response


def http_error_response(error):
    """Turn an HTTPError into a Response (its body may be a message or any handler value)."""
    if error.body is None or isinstance(error.body, str):
        return error_response(error.status, error.body, headers=error.headers)
    response = to_response(error.body)
    response.status = error.status
    if error.headers:
        for name, value in error.headers.items():
            response.headers[name] = value
    return response
