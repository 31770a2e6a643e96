"""pixie_web: a one-file web framework where each route chooses how it runs.

Copy this file into a project (it needs only the standard library) and write::

    from pixie_web import route, run, RouteType

    def slow_fib(n):
        return n if n < 2 else slow_fib(n - 1) + slow_fib(n - 2)

    @route("/")
    def index(request):
        return "Hello, World!"

    @route("/cpu/<n:int>", RouteType.pool)   # runs in a worker process
    def fib(request, n):
        return {"fib": slow_fib(n)}

    if __name__ == "__main__":
        run()

Map of the sections below (each uses only what stands above it):

    Imports and accelerators   stdlib imports; uvloop/httptools/ujson, switch PIXIE_WEB_PURE
    HTTP grammar               the RFC 9110/9112 productions as regexes: token, field-line,
                               request-line, Host, chunk-size; CRLF
    Helpers                    status reasons, JSON, dates, header checks, signing
    Data structures            MultiDict, Headers (case-insensitive, multi-valued)
    Errors                     HTTPError, abort, redirect, ProtocolError
    Header fields              _HeaderSection, the pure header-section parser
    Routing                    RouteType, Route, Router (static dict + compiled dynamic matcher)
    Forms and multipart        the streaming multipart parser, FileUpload
    Request                    Request (lazy parsing), query/cookie parsers, the pool snapshot
    Response                   Response and subclasses, cookies, to_response (the one
                               return-value converter), files
    Templates                  SimpleTemplate-style engine: template(), view(), TEMPLATE_PATH
    Sessions                   Session, the Sessions component, cookie/memory/file/SQLite stores
    Process pool               ProcessType, proc_env, the worker entry point and framing, the pool
    HTTP/1.1 connection        sans-IO: request-head parsing, the events, ReadState and its
                               transitions, ReceiveBuffer, the body readers, HTTP11Connection,
                               serialize_head (the one head serialiser)
    HTTP/1.1 server protocol   HTTPProtocol: asyncio glue between a connection, the transport,
                               deadlines and the queue of requests answered in order
    ASGI adapter, WSGI adapter the other front ends of the same dispatch core
    Route-type runners         _RUNNERS: how sync, asnc, thread and pool routes run a handler;
                               _timed (slow-handler reports, Server-Timing)
    Proxy headers              Forwarded / X-Forwarded-* from trusted proxies
    Background tasks           TaskHandle, the per-process _TaskRunner (add_task, every)
    Supervisor                 run(processes=N) and run(reload=True): sockets, serving
                               children, restarts, rolling replacement, file watching
    Metrics                    the Metrics component (Prometheus text format)
    Application                App: the dispatch core (route_request, dispatch, each route's work
                               composed once), hooks, middleware, error handlers, run()
    Test client                TestClient: the real protocol over an in-memory transport
    CLI and default app        python -m pixie_web, default_app and the module-level shortcuts
"""

# ---- Imports and accelerators ----------------------------------------------------------------
# Modules only some requests or commands need (argparse, email.utils, hashlib, hmac,
# mimetypes, multiprocessing, pickle, secrets, tempfile, sqlite3, decimal, unicodedata) are
# imported where they are used, and asyncio at its first use (see _LazyModule), which keeps
# `import pixie_web` light: a pool worker, a script that only renders templates, or a CLI
# that prints its help never loads the event loop machinery.

import base64
import codecs
import concurrent.futures
import contextlib
import contextvars
import functools
import importlib
import inspect
import io
import json
import logging
import os
import re
import signal
import socket
import stat
import struct
import sys
import threading
import time
import traceback
import zlib
from collections import deque, namedtuple
from enum import Enum
from http import HTTPStatus
from types import CoroutineType
from urllib.parse import quote, unquote_to_bytes, urlencode


class _LazyModule:
    """A module imported when one of its attributes is first read; the module-level name
    then refers to the real module, so later uses cost nothing extra. Used for asyncio
    (about a quarter of `import pixie_web` in a fresh environment) and uvloop (which
    imports asyncio)."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attribute):
        module = importlib.import_module(self._name)
        globals()[self._name] = module
        return getattr(module, attribute)


asyncio = _LazyModule("asyncio")

__version__ = "0.1.0"
__all__ = [
    "App", "Router", "Route", "RouteType", "ProcessType", "proc_env",
    "Request", "Response", "JSONResponse", "RedirectResponse", "FileResponse", "StreamResponse",
    "HTTPError", "abort", "redirect", "MultiDict", "Headers", "TestClient", "TestResponse",
    "FileUpload", "MultipartParser", "static_file", "cached_file", "static",
    "template", "view", "SimpleTemplate", "TemplateError", "TEMPLATE_PATH",
    "Sessions", "Session", "CookieStore", "MemoryStore", "FileStore", "SQLiteStore",
    "default_app", "route", "get", "post", "put", "patch", "delete", "error", "mount", "run",
    "url_for", "resource", "before_request", "after_request", "on_startup", "on_shutdown",
    "middleware", "TaskHandle", "Metrics", "ACCELERATORS", "__version__",
    "websocket", "WebSocket", "WebSocketClosed", "in_pool", "Param",
]

log = logging.getLogger("pixie_web")
access_log = logging.getLogger("pixie_web.access")

# PIXIE_WEB_PURE=1 turns every optional accelerator off; behaviour is identical either way.
PURE = os.environ.get("PIXIE_WEB_PURE", "") not in ("", "0")
# orjson is deliberately not used: it writes NaN as null, turns big integers into floats
# and refuses lone surrogates, so responses would differ from the stdlib's. ujson does not.
uvloop = httptools = ujson = None
if not PURE:
    import importlib.util
    if importlib.util.find_spec("uvloop") is not None:
        uvloop = _LazyModule("uvloop")    # imported with the first event loop: _new_event_loop
    try:
        import httptools
    except ImportError:
        httptools = None
    try:
        import ujson
    except ImportError:
        ujson = None

#: Names of the accelerators in use, e.g. ``["uvloop", "ujson"]``. (httptools, when installed,
#: is only the second header parser the differential tests compare with: see
#: _parse_header_lines.)
ACCELERATORS = [name for name, module in (("uvloop", uvloop), ("ujson", ujson))
                if module is not None]


def _new_event_loop():
    """A new event loop: uvloop's when it is in use, else asyncio's."""
    global uvloop
    if uvloop is not None:
        try:
            return uvloop.new_event_loop()
        except ImportError as error:       # installed but broken: fall back for good
            log.warning("uvloop cannot be imported (%s): using asyncio's event loop", error)
            uvloop = None
            ACCELERATORS.remove("uvloop")
    return asyncio.new_event_loop()


# ---- HTTP grammar ----------------------------------------------------------------------------
# The productions of RFC 9110 and RFC 9112 the server parses, as regular expressions, named
# after them. Each is deterministic (no nested repetition that can backtrack) and runs in C.

CRLF = b"\r\n"                  # every line of a head ends with it; a bare CR or LF is refused
_HEAD_END = b"\r\n\r\n"       # the empty line that ends a head
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"                # token (RFC 9110 5.6.2)
_TOKEN_RE = re.compile(_TOKEN)
_STR_TOKEN_RE = re.compile(_TOKEN.decode())
# CTL: 0x00-0x1F except HTAB, and 0x7F: never allowed in a head or a header value.
_CTL_BYTES_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CTL_STR_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_HEAD_CTL_RE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # CR and LF are checked apart
_QUOTED_STRING = rb'"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"'

# field-line = field-name ":" OWS field-value OWS (RFC 9112 5), lines joined by CRLF
_FIELD_VALUE = r"[\t\x20-\x7e\x80-\xff]*"      # HTAB, SP, VCHAR, obs-text: no CTL, no CR/LF
_HEADER_BLOCK_RE = re.compile(r"(?:" + _TOKEN.decode() + ":" + _FIELD_VALUE + r"\r\n)*"
                              + _TOKEN.decode() + ":" + _FIELD_VALUE)
_HEADER_LINE_RE = re.compile(r"(" + _TOKEN.decode() + r"):([^\r\n]*)")
# The lines of a validated block (with a line feed put in front) that the framing rules
# read: a name is a whole token right after a line feed, so "x-host:" or "hostname:" never
# match. Searching for the line feed first is three times faster than a MULTILINE "^".
_FRAMING_LINE_RE = re.compile(
    r"\n(host|content-length|transfer-encoding|connection|expect|content-type):([^\r\n]*)",
    re.IGNORECASE | re.ASCII)

# request-line = method SP request-target SP HTTP-version (RFC 9112 3)
_REQUEST_LINE_RE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
# A subset of request-line (then split_target's plain case): origin-form, no "%" or "#" in
# the path, no "#" in the query, HTTP/1.1 or 1.0; groups: method, path, query, minor.
_SIMPLE_REQUEST_LINE_RE = re.compile(
    rb"(" + _TOKEN + rb") (/[\x21-\x22\x24\x26-\x3e\x40-\x7e]*)(?:\?([\x21-\x22\x24-\x7e]*))?"
    rb" HTTP/1\.([01])(?=\r\n|\Z)")
# absolute-form = absolute-URI of the http(s) scheme (RFC 9112 3.2.2): authority, the rest
_ABSOLUTE_TARGET_RE = re.compile(rb"[hH][tT][tT][pP][sS]?://([^/?#]*)([^#]*)")
# Host = uri-host [ ":" port ] (RFC 9110 7.2), IP-literal included
_HOST_RE = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]{0,5})?")
_DIGITS_RE = re.compile(rb"[0-9]{1,18}")                  # Content-Length = 1*DIGIT
# chunk-size [ chunk-ext ] (RFC 9112 7.1), chunk-ext = *( ";" token [ "=" ( token / quoted-string ) ] )
_CHUNK_LINE_RE = re.compile(
    rb"([0-9A-Fa-f]{1,16})(?:;" + _TOKEN + rb"(?:=(?:" + _TOKEN + rb"|" + _QUOTED_STRING + rb"))?)*")


# ---- Helpers ---------------------------------------------------------------------------------

STATUS_REASONS = {status.value: status.phrase for status in HTTPStatus}
# Responses always carry HTTP/1.1, also to HTTP/1.0 clients: a server sends the highest
# version it conforms to (RFC 9110).
_STATUS_LINES = {code: f"HTTP/1.1 {code} {reason}\r\n".encode("latin-1")
                 for code, reason in STATUS_REASONS.items()}

# A "%2F" in a request path is kept apart from the real slashes while routing, as this
# character (a NUL, which a decoded path can never hold), so a one-segment wildcard can
# carry it.
_ENCODED_SLASH = "\x00"



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


def _json_default(value):
    """What JSON cannot say by itself: a dataclass as an object; date, datetime and time as
    ISO 8601; UUID and Decimal as strings; an Enum as its value."""
    if hasattr(type(value), "__dataclass_fields__"):
        fields = sys.modules["dataclasses"].fields(value)     # loaded: value is a dataclass
        return {field.name: getattr(value, field.name) for field in fields}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    enum = sys.modules.get("enum")
    if enum is not None and isinstance(value, enum.Enum):
        return value.value
    if type(value).__name__ in ("UUID", "Decimal"):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_json_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                                 default=_json_default)
try:
    # JSONEncoder.encode builds a new C encoder per call; one built once is reused here
    # (the same output: CPython's json uses exactly this for a one-shot encode).
    from json.encoder import c_make_encoder as _c_make_encoder, encode_basestring
    _c_json_encoder = _c_make_encoder(None, _json_encoder.default, encode_basestring, None,
                                      ":", ",", False, False, True) if _c_make_encoder else None
except ImportError:     # json without its C accelerator (c_make_encoder is None there)
    _c_json_encoder = None


def _json_dumps_stdlib(data):
    if _c_json_encoder is not None and not isinstance(data, str):
        return "".join(_c_json_encoder(data, 0)).encode("utf-8")
    return _json_encoder.encode(data).encode("utf-8")


# Writing JSON is the standard library's in every build: ujson writes a Decimal as a float
# (losing digits, and not the string SPEC 14 asks for), and a small document costs about
# the same either way with the encoder reused. ujson reads JSON when installed.
json_dumps = _json_dumps_stdlib
json_loads = ujson.loads if ujson is not None else json.loads


def _is_json_type(media_type):
    """application/json, or a structured-syntax type like application/problem+json."""
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
        and len(media_type) > len("application/+json"))


MAX_JSON_DEPTH = 512
_JSON_STRUCTURE_RE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _json_too_deep(data):
    """True if JSON text nests deeper than MAX_JSON_DEPTH (the same limit for every parser)."""
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return False        # cheap C-speed count: shallow documents skip the scan
    depth = 0
    for token in _JSON_STRUCTURE_RE.findall(data):
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(timestamp=None):
    """Format a timestamp (default: now) as an RFC 9110 IMF-fixdate (locale-independent)."""
    t = time.gmtime(timestamp)
    return (f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


class _DateCache:
    """The ``Date`` header line. ``get()`` recomputes it when the second has changed; a
    running server calls it on every new second (``_Server._tick_date``), so responses
    read ``line`` without a clock call."""

    __slots__ = ("second", "line")

    def __init__(self):
        self.second = -1
        self.line = b""

    def get(self, now=None):
        second = int(time.time() if now is None else now)
        if second != self.second:
            self.second = second
            self.line = b"Date: " + http_date(second).encode("ascii") + b"\r\n"
        return self.line


_date_cache = _DateCache()
_date_cache.get()


def _is_coroutine_function(func):
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


_INVALID = object()   # what _verify_signed_cookie returns for a bad cookie


def _sign(secret, message):
    import hashlib
    import hmac
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
    import hmac
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





# ---- Data structures -------------------------------------------------------------------------

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


# ---- Errors ----------------------------------------------------------------------------------

class WebSocketClosed(Exception):
    """Raised by ``ws.receive()`` (and ``send()``) once a WebSocket is closed: ``code`` and
    ``reason`` of its close (1006: the connection dropped without one)."""

    def __init__(self, code=1000, reason=""):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


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


# ---- Header fields ---------------------------------------------------------------------------
# The parser of a header section (its grammar is in "HTTP grammar"), used by requests,
# trailers and multipart parts.



class _HeaderSection:
    """An accepted header section: iterate it for its ``(lower-case name, value)`` pairs;
    ``content_length``, ``chunked``, ``keep_alive``, ``expect_continue``, ``host`` and
    ``upgrade`` (Connection lists the upgrade token) are what the framing rules found (set by
    _check_framing).

    The pairs are split out of the validated text when first iterated, not before: most
    handlers read few headers or none, and a remembered section is shared by every request
    that repeats its bytes."""

    __slots__ = ("_text", "_pairs", "content_length", "chunked", "keep_alive",
                 "expect_continue", "host", "upgrade")

    def __init__(self, text=None, pairs=None):
        self._text = text       # the validated block, decoded as latin-1
        self._pairs = pairs     # a tuple of pairs, once split

    def __iter__(self):
        if self._pairs is None:
            self._pairs = tuple([(name.lower(), value.strip(" \t"))
                                 for name, value in _HEADER_LINE_RE.findall(self._text)])
        return iter(self._pairs)

    def __repr__(self):
        return repr(tuple(self))

    def framing_fields(self):
        """The ``(name, value)`` pairs the framing rules read, without splitting the others
        out; names in any case, values not yet stripped of OWS."""
        if self._pairs is not None:
            return self._pairs
        return _FRAMING_LINE_RE.findall("\n" + self._text)


def _parse_header_lines_pure(block):
    """A header block (bytes, lines joined by CRLF, no final CRLF) → a _HeaderSection.

    Raises ProtocolError unless every line is ``token ":" value`` with no control byte and
    no lone CR or LF. One deterministic regex validates the whole block (linear: a token
    cannot contain ':' and a value cannot contain CR or LF), in C; the pairs are extracted
    by a second one when they are first read.
    """
    if not block:
        return _HeaderSection(pairs=())
    text = block.decode("latin-1")
    if _HEADER_BLOCK_RE.fullmatch(text) is None:
        _raise_head_error(block)
    return _HeaderSection(text)


def _raise_head_error(data):
    """Name what is wrong with a refused head (the same message on every parser path)."""
    if _HEAD_CTL_RE.search(data):
        raise ProtocolError(400, "control character in the request head")
    line_feeds = data.count(b"\n")
    if line_feeds != data.count(b"\r\n") or data.count(b"\r") != line_feeds:
        raise ProtocolError(400, "lines must end with CRLF")
    raise ProtocolError(400, "invalid header line")


# ---- Forms and multipart ---------------------------------------------------------------------

_ParsingLimits = namedtuple("_ParsingLimits", [
    "max_query_params", "max_form_parts", "max_part_header_bytes", "max_form_field_size",
    "spool_threshold"])
_DEFAULT_PARSING_LIMITS = _ParsingLimits(
    max_query_params=1000, max_form_parts=1000, max_part_header_bytes=8192,
    max_form_field_size=1024 * 1024, spool_threshold=512 * 1024)
_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
# Browsers and curl percent-encode '"' in names (WHATWG): a quoted value has no escapes.
_PARAM_RE = re.compile(r';[ \t]*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*'
                       r'("[^"]*"|[^;"]*)', re.DOTALL)
_MAX_PREAMBLE = 64 * 1024
_MAX_PART_HEADERS = 16


def _multipart_boundary(options):
    boundary = options.get("boundary", "")
    if not boundary or not _BOUNDARY_RE.fullmatch(boundary):
        raise HTTPError(400, "multipart/form-data needs a valid boundary (1-70 characters)")
    return boundary.encode("latin-1")


def _utf8_or_latin1(value):
    """Browsers send part headers (file names) as raw UTF-8; read them so when possible."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _parse_disposition(value):
    """``form-data; name="a"; filename="b.txt"`` → ``("form-data", {"name": "a", ...})``."""
    kind, _, rest = value.partition(";")
    params = {}
    for match in _PARAM_RE.finditer(";" + rest):
        key, raw = match.group(1).lower(), match.group(2).strip(" \t")
        if raw.startswith('"'):
            raw = raw[1:-1]              # a backslash is a literal character (WHATWG)
        params[key] = raw
    if "filename*" in params:        # RFC 5987: charset'lang'percent-encoded
        charset, _, encoded = params.pop("filename*").partition("'")
        _, _, encoded = encoded.partition("'")
        try:
            params["filename"] = unquote_to_bytes(encoded).decode(charset or "utf-8")
        except (LookupError, UnicodeDecodeError):
            raise HTTPError(400, "invalid filename* in a multipart part") from None
    return kind.strip().lower(), params


def sanitize_filename(filename):
    """A safe base name for an uploaded file: no directories, no control or shell
    characters, never empty, at most 255 characters."""
    import unicodedata
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^A-Za-z0-9._ -]", "", name)
    name = re.sub(r"[ ]+", "-", name).strip(".- ")
    return (name or "empty")[:255]


class FileUpload:
    """A file uploaded in a multipart form."""

    def __init__(self, name, raw_filename, content_type, file, size, headers):
        self.name = name                  #: the form field name
        self.raw_filename = raw_filename  #: the file name as the client sent it (untrusted)
        self.filename = sanitize_filename(raw_filename)   #: a safe base name
        self.content_type = content_type
        self.file = file                  #: a binary file object, at position 0
        self.size = size
        self.headers = headers

    def read(self):
        """The whole content as bytes."""
        self.file.seek(0)
        data = self.file.read()
        self.file.seek(0)
        return data

    def save(self, destination, overwrite=False, chunk_size=1024 * 1024):
        """Write the upload to ``destination`` (a file path, or a directory to put
        ``filename`` in). An existing file raises FileExistsError unless ``overwrite``."""
        destination = os.fspath(destination)
        if os.path.isdir(destination):
            destination = os.path.join(destination, self.filename)
        with open(destination, "wb" if overwrite else "xb") as target:
            self.file.seek(0)
            while True:
                chunk = self.file.read(chunk_size)
                if not chunk:
                    break
                target.write(chunk)
        self.file.seek(0)
        return destination

    def __repr__(self):
        return f"<FileUpload {self.name}={self.filename!r} {self.size} bytes>"


class MultipartParser:
    """A streaming ``multipart/form-data`` parser: ``feed(data)`` any number of times, then
    ``finish()`` → ``(fields, files)``.

    Linear in the input: every byte is searched at most twice (the delimiter search keeps
    only a delimiter's length of look-behind). Limits: part count (413), part header size
    and count (400), non-file field size (413); file parts above ``spool_threshold`` go to a
    temporary file. Malformed input raises HTTPError(400).
    """

    def __init__(self, boundary, limits=_DEFAULT_PARSING_LIMITS):
        self.limits = limits
        self.delimiter = b"\r\n--" + boundary
        self.fields = MultiDict()
        self.files = MultiDict()
        # A CRLF is prepended so the first boundary looks like every other one.
        self._buffer = bytearray(b"\r\n")
        self._step = "preamble"
        self._preamble_seen = 0
        self._parts = 0
        self._part = None

    def feed(self, data):
        self._buffer += data
        while True:
            handler = getattr(self, "_step_" + self._step)
            if not handler():
                break

    def _step_preamble(self):
        index = self._buffer.find(self.delimiter)
        if index < 0:
            keep = len(self.delimiter) - 1
            drop = max(0, len(self._buffer) - keep)
            self._preamble_seen += drop
            if self._preamble_seen > _MAX_PREAMBLE:
                raise HTTPError(400, "multipart preamble too long")
            del self._buffer[:drop]
            return False
        if self._preamble_seen + index > _MAX_PREAMBLE:
            raise HTTPError(400, "multipart preamble too long")
        del self._buffer[:index + len(self.delimiter)]
        self._step = "after_delimiter"
        return True

    def _step_after_delimiter(self):
        if len(self._buffer) < 2:
            return False
        marker = bytes(self._buffer[:2])
        del self._buffer[:2]
        if marker == b"--":
            self._step = "epilogue"
        elif marker == b"\r\n":
            self._step = "headers"
        else:
            raise HTTPError(400, "malformed multipart boundary line")
        return True

    def _step_headers(self):
        end = self._buffer.find(b"\r\n\r\n")
        limit = self.limits.max_part_header_bytes
        if end < 0:
            if len(self._buffer) > limit:
                raise HTTPError(400, "multipart part headers too large")
            return False
        if end > limit:
            raise HTTPError(400, "multipart part headers too large")
        raw = bytes(self._buffer[:end])
        del self._buffer[:end + 4]
        self._start_part(raw)
        self._step = "data"
        return True

    def _start_part(self, raw):
        self._parts += 1
        if self._parts > self.limits.max_form_parts:
            raise HTTPError(413, f"more than {self.limits.max_form_parts} form parts")
        lines = raw.split(b"\r\n") if raw else []
        if len(lines) > _MAX_PART_HEADERS:
            raise HTTPError(400, "too many multipart part headers")
        headers = Headers()
        try:
            if _CTL_BYTES_RE.search(raw.replace(b"\r\n", b"")):
                raise ValueError("control character")
            for name, value in _parse_header_lines_pure(raw):
                headers.add(name, _utf8_or_latin1(value))
        except (ProtocolError, ValueError):
            raise HTTPError(400, "malformed multipart part headers") from None
        kind, params = _parse_disposition(headers.get("Content-Disposition", ""))
        if kind != "form-data" or "name" not in params:
            raise HTTPError(400, "multipart part without Content-Disposition: form-data; name=")
        length = headers.get("Content-Length")
        if length is not None and not _DIGITS_RE.fullmatch(length.encode("latin-1")):
            raise HTTPError(400, "invalid Content-Length in a multipart part")
        if "filename" in params:
            import tempfile
            spool = tempfile.SpooledTemporaryFile(max_size=self.limits.spool_threshold)
            self._part = (params["name"], params["filename"], headers, spool)
        else:
            self._part = (params["name"], None, headers, bytearray())

    def _write(self, data):
        name, filename, headers, sink = self._part
        if filename is None and len(sink) + len(data) > self.limits.max_form_field_size:
            raise HTTPError(413, f"form field {name!r} is larger than max_form_field_size "
                                 f"({self.limits.max_form_field_size} bytes)")
        sink.write(data) if filename is not None else sink.extend(data)

    def _step_data(self):
        index = self._buffer.find(self.delimiter)
        if index < 0:
            keep = len(self.delimiter) - 1
            if len(self._buffer) > keep:
                self._write(self._buffer[:-keep])
                del self._buffer[:-keep]
            return False
        self._write(self._buffer[:index])
        del self._buffer[:index + len(self.delimiter)]
        self._end_part()
        self._step = "after_delimiter"
        return True

    def _end_part(self):
        name, filename, headers, sink = self._part
        self._part = None
        if filename is None:
            charset = _parse_media_type(headers.get("Content-Type", ""))[1].get("charset")
            try:
                self.fields.add(name, bytes(sink).decode(charset or "utf-8"))
            except (UnicodeDecodeError, LookupError):
                raise HTTPError(400, f"form field {name!r} is not valid text") from None
        else:
            size = sink.tell()
            sink.seek(0)
            content_type = headers.get("Content-Type", "application/octet-stream")
            self.files.add(name, FileUpload(name, filename, content_type, sink, size, headers))

    def _step_epilogue(self):
        self._buffer.clear()     # anything after the closing delimiter is ignored
        return False

    def finish(self):
        """Check the body ended with the closing delimiter; return ``(fields, files)``."""
        if self._step != "epilogue":
            raise HTTPError(400, "multipart body ended without its closing boundary")
        return self.fields, self.files


# ---- Typed parameters ------------------------------------------------------------------------
# A handler's parameters other than ``request`` are bound from the request by their
# annotations (SPEC 14). Each route's _BindingPlan is worked out once, when the route is
# registered: one converter per parameter, compiled from its annotation, and where its value
# comes from. At a request the plan either gives the handler's keyword arguments or lists
# every error (the 422's "detail"). Converters are ``convert(value, errors)``: they return
# the converted value, or _UNBOUND after appending their errors, each with its ``loc``
# relative to the value (a converter of a list or an object puts the index or field in
# front of its items' errors): no loc is built while values are valid. Text converters
# path to the value). Text converters read strings (query, form, header, cookie, path);
# JSON converters read parsed JSON.

_UNBOUND = object()             # a converter's failure; a parameter's missing value
_BOOL_WORDS = {"true": True, "1": True, "yes": True, "on": True,
               "false": False, "0": False, "no": False, "off": False}
_SOURCES = ("query", "form", "header", "cookie", "json")
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")


class Param:
    """What ``Annotated[T, Param(...)]`` adds to a typed handler parameter (or a dataclass
    field): where its value comes from (``source``: "query", "form", "header", "cookie" or
    "json"; by default the query, then the form), the name it has there (``alias``), its
    constraints (``ge``, ``gt``, ``le``, ``lt`` for numbers; ``min_length``,
    ``max_length`` for strings and lists; ``pattern``, a regex a string must contain) and
    a ``description`` for the OpenAPI document."""

    __slots__ = ("source", "alias", "ge", "gt", "le", "lt", "min_length", "max_length",
                 "pattern", "description")

    def __init__(self, *, source=None, alias=None, ge=None, gt=None, le=None, lt=None,
                 min_length=None, max_length=None, pattern=None, description=None):
        if source is not None and source not in _SOURCES:
            raise ValueError(f"Param(source={source!r}): use one of {', '.join(_SOURCES)}")
        self.source, self.alias, self.description = source, alias, description
        self.ge, self.gt, self.le, self.lt = ge, gt, le, lt
        self.min_length, self.max_length = min_length, max_length
        self.pattern = pattern

    def __repr__(self):
        given = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__
                          if getattr(self, name) is not None)
        return f"Param({given})"


def _error(kind, message):
    return {"loc": [], "msg": message, "type": kind}


def _located(errors, mark, *keys):
    """Put ``keys`` in front of the loc of the errors added since ``mark``."""
    for error in errors[mark:]:
        error["loc"][0:0] = keys


def _unwrap(annotation, where):
    """``(type, Param or None, optional)`` of an annotation: Annotated, ``X | None`` and a
    TypedDict's Required/NotRequired taken apart."""
    import typing
    param = None
    if typing.get_origin(annotation) in (typing.Required, typing.NotRequired):
        (annotation,) = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        param = next((extra for extra in annotation.__metadata__
                      if isinstance(extra, Param)), None)
        annotation = annotation.__origin__
    optional = False
    if _is_union(annotation):
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        if len(members) != 1:
            raise TypeError(f"{where}: {annotation!r} cannot be bound: the only union "
                            f"bound is X | None")
        annotation = members[0]
        if typing.get_origin(annotation) is typing.Annotated:
            inner_param = next((extra for extra in annotation.__metadata__
                                if isinstance(extra, Param)), None)
            param = param or inner_param
            annotation = annotation.__origin__
    return annotation, param, optional


def _is_union(annotation):
    import types
    import typing
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _is_dataclass_type(annotation):
    return isinstance(annotation, type) and hasattr(annotation, "__dataclass_fields__")


def _is_typeddict(annotation):
    import typing
    return isinstance(annotation, type) and typing.is_typeddict(annotation)


def _is_structure(annotation):
    """A dataclass or TypedDict: an object read from a body."""
    return _is_dataclass_type(annotation) or _is_typeddict(annotation)


def _choices(values):
    texts = [repr(value) for value in values]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def _scalar(kind, text):
    """The converter of one scalar of type ``kind``, from a string when ``text``, else from a
    parsed JSON value; None when ``kind`` is no scalar."""
    import decimal
    import enum
    import typing
    import uuid
    from datetime import date, datetime
    if kind is str or kind is typing.Any:
        def convert(value, errors):
            if type(value) is not str:
                errors.append(_error("string_type", "Input should be a valid string"))
                return _UNBOUND
            return value
        return convert
    if kind is bool:
        def convert(value, errors):
            if type(value) is bool and not text:
                return value
            if type(value) is str:
                word = _BOOL_WORDS.get(value.lower())
                if word is not None:
                    return word
            errors.append(_error("bool_parsing", "Input should be a valid boolean, unable "
                                                 "to interpret input"))
            return _UNBOUND
        return convert
    if kind is int:
        def convert(value, errors):
            kind_of = type(value)
            if kind_of is int:
                return value
            if kind_of is str and _INTEGER_RE.fullmatch(value):
                return int(value)
            if kind_of is float and value.is_integer():
                return int(value)
            errors.append(_error("int_parsing", "Input should be a valid integer, unable to "
                                                "parse string as an integer" if kind_of is str
                                 else "Input should be a valid integer"))
            return _UNBOUND
        return convert
    if kind is float:
        def convert(value, errors):
            kind_of = type(value)
            if kind_of is float or kind_of is int:
                return float(value)
            if kind_of is str:
                try:
                    return float(value)
                except ValueError:
                    pass
            errors.append(_error("float_parsing", "Input should be a valid number, unable "
                                                  "to parse string as a number"))
            return _UNBOUND
        return convert
    if kind is decimal.Decimal:
        def convert(value, errors):
            if type(value) in (str, int, float):
                try:
                    number = decimal.Decimal(str(value))
                except decimal.InvalidOperation:
                    pass
                else:
                    if number.is_finite():
                        return number
            errors.append(_error("decimal_parsing", "Input should be a valid decimal"))
            return _UNBOUND
        return convert
    parsers = {uuid.UUID: ("uuid_parsing", "Input should be a valid UUID", uuid.UUID),
               datetime: ("datetime_parsing", "Input should be a valid datetime",
                          datetime.fromisoformat),
               date: ("date_parsing", "Input should be a valid date", date.fromisoformat)}
    if kind in parsers:
        error_kind, message, parse = parsers[kind]

        def convert(value, errors):
            if type(value) is str:
                try:
                    return parse(value)
                except ValueError:
                    pass
            errors.append(_error(error_kind, message))
            return _UNBOUND
        return convert
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        by_text = {str(member.value): member for member in kind}
        by_value = {member.value: member for member in kind
                    if isinstance(member.value, typing.Hashable)}
        message = f"Input should be {_choices([member.value for member in kind])}"

        def convert(value, errors):
            member = by_text.get(value) if type(value) is str else None
            if member is None and not text and isinstance(value, typing.Hashable):
                member = by_value.get(value)
            if member is None:
                errors.append(_error("enum", message))
                return _UNBOUND
            return member
        return convert
    if typing.get_origin(kind) is typing.Literal:
        allowed = typing.get_args(kind)
        by_text = {str(value).lower() if type(value) is bool else str(value): value
                   for value in allowed}
        message = f"Input should be {_choices(allowed)}"

        def convert(value, errors):
            if type(value) is str and text:
                if value in by_text:
                    return by_text[value]
            elif value in allowed and type(value) in {type(each) for each in allowed}:
                return value
            errors.append(_error("literal_error", message))
            return _UNBOUND
        return convert
    return None


_BOUNDS = (("ge", "greater_than_equal", "greater than or equal to"),
           ("gt", "greater_than", "greater than"),
           ("le", "less_than_equal", "less than or equal to"),
           ("lt", "less_than", "less than"))


def _constrained(convert, param, kind, where):
    """``convert`` followed by the checks of ``param`` (a Param or None)."""
    import operator
    import typing
    if param is None:
        return convert
    bounds = [(getattr(param, name), error_kind, getattr(operator, name), words)
              for name, error_kind, words in _BOUNDS if getattr(param, name) is not None]
    lengths = [(bound, error_kind, test, words) for bound, error_kind, test, words in (
        (param.min_length, "too_short", operator.ge, "at least"),
        (param.max_length, "too_long", operator.le, "at most")) if bound is not None]
    pattern = re.compile(param.pattern) if param.pattern is not None else None
    import decimal
    from datetime import date
    if bounds and not (kind in (int, float, decimal.Decimal)
                       or isinstance(kind, type) and issubclass(kind, date)):
        raise TypeError(f"{where}: ge/gt/le/lt constrain numbers and dates")
    is_list = kind is list or typing.get_origin(kind) is list
    if lengths and kind is not str and not is_list:
        raise TypeError(f"{where}: min_length/max_length constrain strings and lists")
    if pattern is not None and kind is not str:
        raise TypeError(f"{where}: pattern constrains strings")
    if not (bounds or lengths or pattern):
        return convert
    subject, noun = ("String", "character") if kind is str else ("List", "item")
    prefix = "string_" if kind is str else ""

    def checked(value, errors):
        value = convert(value, errors)
        if value is _UNBOUND or value is None:
            return value
        for bound, error_kind, test, words in bounds:
            if not test(value, bound):
                errors.append(_error(error_kind, f"Input should be {words} {bound}"))
                return _UNBOUND
        for bound, error_kind, test, words in lengths:
            if not test(len(value), bound):
                errors.append(_error(prefix + error_kind, f"{subject} should have "
                                     f"{words} {bound} {noun}{'' if bound == 1 else 's'}"))
                return _UNBOUND
        if pattern is not None and pattern.search(value) is None:
            errors.append(_error("string_pattern_mismatch",
                                 f"String should match pattern '{param.pattern}'"))
            return _UNBOUND
        return value
    return checked


def _compile(annotation, text, where, _seen=None):
    """The converter of ``annotation`` (see the section comment); TypeError naming
    ``where`` if it cannot be bound."""
    kind, param, optional = _unwrap(annotation, where)
    convert = _compile_kind(kind, text, where, {} if _seen is None else _seen)
    convert = _constrained(convert, param, kind, where)
    if optional:
        inner = convert

        def convert(value, errors):
            return None if value is None else inner(value, errors)
    return convert


def _compile_kind(kind, text, where, seen):
    import typing
    scalar = _scalar(kind, text)
    if scalar is not None:
        return scalar
    origin = typing.get_origin(kind)
    if kind is list or origin is list:
        (item,) = typing.get_args(kind) or (str,)
        item_convert = _compile(item, text, where, seen)

        def convert(value, errors):
            if type(value) is not list:
                errors.append(_error("list_type", "Input should be a valid list"))
                return _UNBOUND
            result, failed = [], False
            for index, each in enumerate(value):
                mark = len(errors)
                converted = item_convert(each, errors)
                if converted is _UNBOUND:
                    _located(errors, mark, index)
                    failed = True
                result.append(converted)
            return _UNBOUND if failed else result
        return convert
    if (kind is dict or origin is dict) and not text:
        key_type, value_type = typing.get_args(kind) or (str, typing.Any)
        if key_type is not str:
            raise TypeError(f"{where}: only dict[str, X] can be bound (JSON keys are strings)")
        value_convert = _compile(value_type, False, where, seen)

        def convert(value, errors):
            if type(value) is not dict:
                errors.append(_error("dict_type", "Input should be a valid dictionary"))
                return _UNBOUND
            result, failed = {}, False
            for key, each in value.items():
                mark = len(errors)
                converted = value_convert(each, errors)
                if converted is _UNBOUND:
                    _located(errors, mark, key)
                    failed = True
                result[key] = converted
            return _UNBOUND if failed else result
        return convert
    if _is_structure(kind):
        if text:
            raise TypeError(f"{where}: a dataclass or TypedDict comes from a JSON body (a "
                            f"form or the path holds only flat values)")
        return _compile_structure(kind, False, where, seen)
    raise TypeError(f"{where}: {getattr(kind, '__name__', kind)!r} cannot be bound from a "
                    f"request (use str, int, float, bool, Decimal, UUID, date, datetime, an "
                    f"Enum, Literal, list[...], dict[str, ...], X | None, a dataclass, a "
                    f"TypedDict or FileUpload)")


def _structure_fields(kind):
    """``[(name, annotation, required, default or factory)]`` of a dataclass or TypedDict."""
    import dataclasses
    import typing
    hints = typing.get_type_hints(kind, include_extras=True)
    if _is_typeddict(kind):
        return [(name, hints[name], name in kind.__required_keys__, _UNBOUND)
                for name in hints]
    fields = []
    for field in dataclasses.fields(kind):
        if not field.init:
            continue
        if field.default is not dataclasses.MISSING:
            fields.append((field.name, hints[field.name], False, ("value", field.default)))
        elif field.default_factory is not dataclasses.MISSING:
            fields.append((field.name, hints[field.name], False, ("factory",
                                                                  field.default_factory)))
        else:
            fields.append((field.name, hints[field.name], True, _UNBOUND))
    return fields


def _compile_structure(kind, text, where, seen):
    """The converter of a dataclass or TypedDict: an object (a dict, or the form's fields
    when ``text``), field by field; missing fields with defaults keep them (left out, so a
    dataclass's own default and default_factory apply)."""
    import typing
    key = (kind, text)
    if key in seen:                          # a recursive structure: its converter to come
        return lambda value, errors: seen[key](value, errors)
    seen[key] = None
    fields, repeated = [], set()
    for name, annotation, required, _ in _structure_fields(kind):
        where_field = f"{where}: field {name!r}"
        fields.append((name, _compile(annotation, text, where_field, seen), required))
        field_kind = _unwrap(annotation, where_field)[0]
        if field_kind is list or typing.get_origin(field_kind) is list:
            repeated.add(name)         # from a form: every value of the repeated key
    build = dict if _is_typeddict(kind) else kind
    name_of = kind.__name__

    def convert(value, errors):
        if text:                       # a MultiDict of form fields
            value = {field_name: value.getall(field_name) if field_name in repeated
                     else value.get(field_name) for field_name, *_ in fields
                     if field_name in value}
        elif type(value) is not dict:
            errors.append(_error("dict_type", f"Input should be a valid dictionary or "
                                              f"object to build {name_of}"))
            return _UNBOUND
        arguments, failed = {}, False
        for field_name, field_convert, required in fields:
            if field_name not in value:
                if required:
                    errors.append({"loc": [field_name], "msg": "Field required",
                                   "type": "missing"})
                    failed = True
                continue
            mark = len(errors)
            converted = field_convert(value[field_name], errors)
            if converted is _UNBOUND:
                _located(errors, mark, field_name)
                failed = True
            arguments[field_name] = converted
        return _UNBOUND if failed else build(**arguments)
    seen[key] = convert
    return convert


class _Binder(namedtuple("_Binder", "name key source annotation param convert required "
                                    "default many")):
    """How one handler parameter is bound: its ``name``, the ``key`` it is looked up by,
    its ``source`` ("path", "params" (query, then form), "query", "form", "header",
    "cookie", "json" (a field of the JSON body), "body" (the whole body: a dataclass or
    TypedDict), "files"), the ``annotation`` and ``param`` (for OpenAPI), its converter,
    whether it is ``required``, its ``default``, and ``many`` (all values of a repeated
    key)."""

    __slots__ = ()


def _binding_plan(handler, path, wildcards, skip_first=True):
    """The _BindingPlan of ``handler`` on route ``path`` (None when nothing is bound);
    TypeError, naming the route and the parameter, for what cannot be bound."""
    import typing
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return None
    parameters = [parameter for parameter in signature.parameters.values()
                  if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        inspect.Parameter.KEYWORD_ONLY)]
    if skip_first and parameters and parameters[0].kind is not inspect.Parameter.KEYWORD_ONLY:
        parameters = parameters[1:]             # the request
    name = getattr(handler, "__qualname__", repr(handler))
    bound = [parameter for parameter in parameters
             if parameter.name not in wildcards or parameter.annotation is not
             inspect.Parameter.empty]
    if not bound:
        return None
    try:
        hints = typing.get_type_hints(handler, include_extras=True)
    except Exception as error:
        raise TypeError(f"route {path!r}: the annotations of {name} cannot be evaluated: "
                        f"{error}") from None
    binders = []
    for parameter in bound:
        where = f"route {path!r}: parameter {parameter.name!r} of {name}"
        annotation = hints.get(parameter.name, str)
        default = parameter.default
        required = default is inspect.Parameter.empty
        binders.append(_binder(parameter.name, annotation, required, default, where,
                               parameter.name in wildcards))
    bodies = [binder.name for binder in binders if binder.source == "body"]
    if len(bodies) > 1:
        raise TypeError(f"route {path!r}: {name} has more than one body parameter "
                        f"({', '.join(map(repr, bodies))}: dataclasses or TypedDicts): use "
                        f"one, with the others as its fields")
    return _BindingPlan(tuple(binders))


def _binder(name, annotation, required, default, where, is_wildcard):
    import typing
    kind, param, optional = _unwrap(annotation, where)
    source = param.source if param is not None and param.source else None
    key = param.alias if param is not None and param.alias else name
    many = False
    list_item = typing.get_args(kind)[0] if typing.get_origin(kind) is list and \
        typing.get_args(kind) else None
    if is_wildcard:
        if source is not None:
            raise TypeError(f"{where}: a path wildcard comes from the path, not {source!r}")
        if kind is list or list_item is not None:
            raise TypeError(f"{where}: a path wildcard holds one value, not a list")
        return _Binder(name, name, "path", annotation, param,
                       _compile(annotation, True, where), True, default, False)
    if kind is FileUpload or list_item is FileUpload:
        if source is not None:
            raise TypeError(f"{where}: files come from the form, not {source!r}")
        return _Binder(name, key, "files", annotation, param, None, required, default,
                       list_item is FileUpload)
    if _is_structure(kind):
        if source not in (None, "json"):
            raise TypeError(f"{where}: a dataclass or TypedDict comes from the body, not "
                            f"{source!r}")
        return _Binder(name, key, "body", annotation, param,
                       (_compile(annotation, False, where), _form_structure(kind, where)),
                       required, default, False)
    if source == "json":
        return _Binder(name, key, "json", annotation, param, _compile(annotation, False, where),
                       required, default, False)
    if source == "header" and (param is None or param.alias is None):
        key = name.replace("_", "-")
    many = kind is list or typing.get_origin(kind) is list
    if many and source in ("header", "cookie"):
        raise TypeError(f"{where}: a list comes from the query or the form, not {source!r}")
    return _Binder(name, key, source or "params", annotation, param,
                   _compile(annotation, True, where), required, default, many)


def _form_structure(kind, where):
    """The converter of a dataclass or TypedDict from a form's fields, or None when it is
    not flat (then it comes from a JSON body only)."""
    try:
        return _compile_structure(kind, True, where, {})
    except TypeError:
        return None


class _BindingPlan:
    """The binders of one handler; ``bind(request)`` → ``(keyword arguments, errors)``.
    Each binder's fetch (where its raw value is, by source) is chosen once, here."""

    __slots__ = ("binders", "_steps")

    def __init__(self, binders):
        self.binders = binders
        self._steps = tuple((binder, _FETCHERS[binder.source], binder.convert,
                             binder.source == "body") for binder in binders)

    def bind(self, request):
        values, errors = {}, []
        for binder, fetch, convert, is_body in self._steps:
            raw, where = fetch(binder, request)
            if raw is _UNBOUND:
                if binder.required:
                    errors.append({"loc": ["body"] if is_body else [where, binder.key],
                                   "msg": "Field required", "type": "missing"})
                else:
                    values[binder.name] = binder.default
                continue
            if is_body:         # (the JSON converter, or the form's for a flat structure)
                convert = convert[1] if type(raw) is MultiDict else convert[0]
            elif convert is None:               # files: FileUpload objects as they are
                values[binder.name] = raw
                continue
            mark = len(errors)
            value = convert(raw, errors)
            if value is _UNBOUND:
                if is_body:
                    _located(errors, mark, "body")
                else:
                    _located(errors, mark, where, binder.key)
            else:
                values[binder.name] = value
        return values, errors


# Where each source's raw value is: fetch(binder, request) → (value or _UNBOUND, the first
# element of its loc). The query and the form are MultiDicts: read through their dict of
# value lists (one lookup instead of two method calls).

def _values(multidict, binder):
    values = multidict._data.get(binder.key)
    if not values:
        return _UNBOUND
    return list(values) if binder.many else values[-1]


def _fetch_params(binder, request):
    value = _values(request.query, binder)
    if value is not _UNBOUND:
        return value, "query"
    value = _values(request.form, binder)
    return value, ("query" if value is _UNBOUND else "body")


def _fetch_query(binder, request):
    return _values(request.query, binder), "query"


def _fetch_form(binder, request):
    return _values(request.form, binder), "body"


def _fetch_path(binder, request):
    value = request.path_params[binder.name]
    return (value if type(value) is str else str(value)), "path"


def _fetch_body(binder, request):
    body = request.json
    if body is None:
        if binder.convert[1] is not None and request._body and request.form:
            return request.form, "body"         # a flat structure from a form
        return _UNBOUND, "body"
    return body, "body"


def _fetch_json(binder, request):
    body = request.json
    if type(body) is dict and binder.key in body:
        return body[binder.key], "body"
    return _UNBOUND, "body"


def _fetch_header(binder, request):
    value = request.headers.get(binder.key)
    return (_UNBOUND if value is None else value), "header"


def _fetch_cookie(binder, request):
    value = request.cookies.get(binder.key)
    return (_UNBOUND if value is None else value), "cookie"


def _fetch_files(binder, request):
    return _values(request.files, binder), "body"


_FETCHERS = {"params": _fetch_params, "query": _fetch_query, "form": _fetch_form,
             "path": _fetch_path, "body": _fetch_body, "json": _fetch_json,
             "header": _fetch_header, "cookie": _fetch_cookie, "files": _fetch_files}


# ---- Routing ---------------------------------------------------------------------------------

class RouteType(Enum):
    """How a route's handler runs."""

    sync = "sync"        #: a plain function called on the event loop thread
    asnc = "asnc"        #: an ``async def`` awaited on the event loop
    thread = "thread"    #: a plain function run in the thread pool
    pool = "pool"        #: a module-level function run in a worker process


# The members as plain globals, for the per-request paths (reading an Enum class attribute
# costs a dozen times more than a global).
_SYNC, _ASNC = RouteType.sync, RouteType.asnc


# name -> (regex, converter to Python, converter to URL)
def _quote_segment(value):
    return quote(str(value), safe="")


def _quote_path(value):
    return quote(str(value), safe="/")


def _float_to_url(value):
    """A float as plain digits (no exponent), so the float wildcard matches it again."""
    import decimal
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"url_for: {value!r} cannot be a float wildcard value")
    return format(decimal.Decimal(repr(number)), "f")


def _finite_float(text):
    """A float wildcard's value; one that overflows to infinity is refused (400)."""
    number = float(text)
    if number in (_INFINITY, -_INFINITY):
        raise OverflowError(f"{text[:20]}... is too large for a float")
    return number


_INFINITY = float("inf")
_WILDCARD_FILTERS = {
    "": (r"[^/]+", None, _quote_segment),
    "int": (r"-?[0-9]+", int, _quote_segment),
    "float": (r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", _finite_float, _float_to_url),
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
        self.names = tuple(name for name, _ in self.converters)
        self.typed = tuple((name, to_python) for name, to_python in self.converters if to_python)
        self.single = self.converters[0] if len(self.converters) == 1 else None
        self.is_static = not self.converters
        self.regex_parts = regex_parts
        first = path.lstrip("/").split("/", 1)[0]
        self.first_segment = None if "<" in first else first

    def regex(self):
        """The pattern as a regex with one group per wildcard, in order (and no others)."""
        return "".join(f"({part[1]})" if isinstance(part, tuple) else part
                       for part in self.regex_parts)

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
        """One pattern: its own regex. Several: an alternation of ``(pattern)`` groups; the
        group that closes last (``lastindex``) tells which one matched, and the wildcard
        groups that follow it hold its values."""
        if len(self.patterns) == 1:
            self._compiled = re.compile(self.patterns[0].regex() + r"\Z", re.DOTALL)
            self._slots = None
            return
        alternatives, slots, group = [], {}, 1
        for pattern in self.patterns:
            alternatives.append(f"({pattern.regex()})")
            slots[group] = (pattern, group, group + len(pattern.names))
            group += 1 + len(pattern.names)
        self._compiled = re.compile("(?:" + "|".join(alternatives) + r")\Z", re.DOTALL)
        self._slots = slots

    def match(self, path):
        """The first pattern matching ``path`` and its raw wildcard values, or None."""
        if self._compiled is None:
            self._compile()
        found = self._compiled.match(path)
        if found is None:
            return None
        if self._slots is None:
            return self.patterns[0], found.groups()
        pattern, start, stop = self._slots[found.lastindex]
        return pattern, found.groups()[start:stop]

    def match_all(self, path):
        """Every matching pattern in order (slow path, used for 405s and method fallbacks)."""
        results = []
        for pattern in self.patterns:
            found = re.compile(pattern.regex() + r"\Z", re.DOTALL).match(path)
            if found:
                results.append((pattern, found.groups()))
        return results


# Bumped whenever routes, hooks or middleware change anywhere: each App then composes its
# routes' work again before its next request (App.dispatch).
_routes_version = 0


def _routes_changed():
    global _routes_version
    _routes_version += 1


class Route:
    """One handler for one method on one path."""

    __slots__ = ("method", "path", "name", "route_type", "handler", "timeout", "stream_body",
                 "owner", "pattern", "websocket", "binding", "__weakref__")

    def __init__(self, method, path, handler, route_type, name=None, timeout=None,
                 stream_body=False, owner=None, websocket=None):
        self.method = method
        self.path = path
        self.handler = handler
        self.route_type = route_type
        self.name = name
        self.timeout = timeout
        self.stream_body = stream_body
        self.owner = owner
        self.pattern = None
        self.websocket = websocket  # a WebSocket route's _WebSocketOptions (method WEBSOCKET)
        self.binding = None         # its _BindingPlan (typed parameters), set by add_route

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
    if route_type is RouteType.pool and not _is_module_level_function(handler):
        raise TypeError(f"route {path!r}: {name} cannot be a pool route: pool handlers are "
                        "sent to worker processes by importable name, so they must be "
                        "module-level functions (no lambda, closure, nested function or method)")
    return route_type


def _is_module_level_function(function):
    """What a worker process can import by name: no lambda, closure, nested function or
    method."""
    qualname = getattr(function, "__qualname__", "")
    return (inspect.isfunction(function) and "<" not in qualname and "." not in qualname
            and getattr(function, "__module__", None) is not None)


#: What ``websocket(path, subprotocols=..., origins=...)`` was given.
_WebSocketOptions = namedtuple("_WebSocketOptions", "subprotocols origins")


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

    def websocket(self, path, name=None, subprotocols=None, origins=None):
        """Decorator registering an ``async def handler(request, ws, **wildcards)`` for
        WebSocket connections to ``path`` (SPEC: the WebSockets section of the README).
        ``subprotocols``: those the server speaks, in its order of preference;
        ``origins``: the ``Origin`` values allowed (else App(websocket_origins=...))."""
        def decorator(handler):
            if not _is_coroutine_function(handler):
                raise TypeError(f"websocket route {path!r}: "
                                f"{getattr(handler, '__qualname__', handler)!r} must be an "
                                f"async def function")
            options = _WebSocketOptions(
                tuple(subprotocols) if subprotocols is not None else None,
                frozenset(origins) if origins is not None else None)
            self.add_route(Route("WEBSOCKET", self.prefix + path, handler, RouteType.asnc,
                                 name=name or handler.__name__, owner=self,
                                 websocket=options))
            return handler
        return decorator

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
        if route.websocket is None:      # typed parameters: TypeError now, not at a request
            route.binding = _binding_plan(route.handler, route.path, set(pattern.names))
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
        _routes_changed()
        return route

    def _add_mounted(self, prefix, route):
        copy = Route(route.method, prefix + route.path, route.handler, route.route_type,
                     name=route.name, timeout=route.timeout, stream_body=route.stream_body,
                     owner=route.owner, websocket=route.websocket)
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

    def _convert(self, pattern, values, path):
        """The handler's keyword arguments from a pattern's raw values (400 if one of them
        does not convert, e.g. an int of more digits than Python converts)."""
        if _ENCODED_SLASH in path:
            values = [value.replace(_ENCODED_SLASH, "/") for value in values]
        try:
            if pattern.single is not None:          # the usual case: one wildcard
                name, to_python = pattern.single
                return {name: to_python(values[0]) if to_python else values[0]}
            params = dict(zip(pattern.names, values))
            for name, to_python in pattern.typed:
                params[name] = to_python(params[name])
            return params
        except (ValueError, OverflowError):
            raise HTTPError(400, "path has the wrong format") from None

    def _buckets_for(self, path):
        end = path.find("/", 1)
        return self._buckets.get(path[1:end] if end > 0 else path[1:]), self._wild_bucket

    def _first_match(self, path):
        """``(pattern, raw values)`` of the first dynamic pattern matching ``path``, or None."""
        end = path.find("/", 1)                     # _buckets_for, without a call
        bucket = self._buckets.get(path[1:end] if end > 0 else path[1:])
        found = bucket.match(path) if bucket is not None else None
        if found is None and self._wild_bucket.patterns:
            found = self._wild_bucket.match(path)
        return found

    def _all_matches(self, path):
        return [found for bucket in self._buckets_for(path) if bucket is not None
                for found in bucket.match_all(path)]

    def find(self, method, path):
        """Find the route for ``method`` and ``path``.

        Returns ``(route, params, allowed)``: ``route`` is None when nothing matches
        (``allowed`` is None: 404) or when the path exists without this method
        (``allowed`` lists the methods for 405 / OPTIONS).
        """
        pattern = self._static.get(path)
        if pattern is not None:            # the usual outcomes first
            route = pattern.routes.get(method) or (method == "HEAD" and pattern.routes.get("GET"))
            if route:
                return route, {}, None
        else:
            found = self._first_match(path)
            if found is not None:
                pattern, values = found
                route = (pattern.routes.get(method)
                         or (method == "HEAD" and pattern.routes.get("GET")))
                if route:
                    return route, self._convert(pattern, values, path), None
        return self._find_slowly(method, path)

    def _find_slowly(self, method, path):
        """``find`` when the first match lacks the method: later patterns, else the Allow
        list of every pattern that matches (405), else nothing (404)."""
        allowed = set()
        pattern = self._static.get(path)
        if pattern is not None:
            allowed.update(_allowed_methods(pattern.routes))
        if self._first_match(path) is not None:
            for pattern, values in self._all_matches(path):
                route = (pattern.routes.get(method)
                         or (method == "HEAD" and pattern.routes.get("GET")))
                if route:
                    return route, self._convert(pattern, values, path), None
                allowed.update(_allowed_methods(pattern.routes))
        if not allowed:
            return None, None, None
        if allowed != {"WEBSOCKET"}:
            allowed.discard("WEBSOCKET")     # with other methods: they are the Allow list
        return None, {}, sorted(allowed)


def _allowed_methods(routes):
    """The Allow list of a path's routes; ``["WEBSOCKET"]`` for a WebSocket-only path (a
    plain request there gets 426)."""
    allowed = set(routes)
    if allowed == {"WEBSOCKET"}:
        return ["WEBSOCKET"]
    allowed = (allowed - {"WEBSOCKET"}) | {"OPTIONS"}
    if "GET" in allowed:
        allowed.add("HEAD")
    return sorted(allowed)


# ---- Request ---------------------------------------------------------------------------------

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
                 "_body", "remote_addr", "scheme", "app", "path_params", "_host", "limits",
                 "_server", "_keep_alive", "__dict__", "__weakref__")

    # What most requests never set: read from the class until set (in the __dict__).
    route = None
    _headers = _state = _query = _cookies = _form = _json = _files = None
    _stream = _session = _session_loader = None
    _routing_outcome = None     # decided when the head arrived: a Response or an HTTPError
    _body_parts = None          # body chunks while the protocol reads them
    started = 0.0               # time.monotonic() when the head arrived, for the access log
    # debug mode and slow-handler reports (time.monotonic()): the bytes that completed the
    # head arrived; the handler started and ended; the pool worker that ran it
    _arrived = _handler_started = _handler_ended = 0.0
    _worker_pid = None
    # a WebSocket handshake: what the client offered, the front end's channel, and whether
    # the connection switched protocols (then the front end writes no HTTP response)
    _websocket_offer = _websocket_channel = None
    _switched = False
    _after_tasks = None         # [(function, args, kwargs)] to start once the response is sent

    def __init__(self, method, raw_path, path, query_string, http_version, header_pairs,
                 body=b"", remote_addr="", scheme="http", host=None, app=None):
        self.method = method
        self.raw_path = raw_path
        self.path = path
        self.query_string = query_string
        self.http_version = http_version
        self._header_pairs = header_pairs     # [(lower-case name, value)] already validated
        self._body = body
        self.remote_addr = remote_addr
        self.scheme = scheme
        self._host = host
        self.app = app
        self.path_params = {}
        self._server = None        # the _Server whose pools run this request's handler
        self._keep_alive = True    # the connection stays open after the response
        self.limits = app._parsing_limits if app is not None else _DEFAULT_PARSING_LIMITS

    def __repr__(self):
        return f"<Request {self.method} {self.raw_path}>"

    def add_task(self, function, /, *args, **kwargs):
        """Run ``function(*args, **kwargs)`` as a background task (``app.add_task``, with
        its ``retries=`` and ``timeout=``) once this request's response has been sent."""
        if self.app is None:
            raise RuntimeError("request.add_task is not available in a pool worker")
        if self._after_tasks is None:
            self._after_tasks = []
        self._after_tasks.append((function, args, kwargs))

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
            self._query = parse_query_string(self.query_string, self.limits.max_query_params)
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

    @property
    def session(self):
        """The session dict (when a Sessions component is installed), loaded on first use."""
        if self._session is None and self._session_loader is not None:
            self._session = self._session_loader(self)
        return self._session

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
        """The parsed JSON body when the media type is application/json or any
        application/*+json (e.g. application/problem+json), else None.

        Malformed JSON raises HTTPError(400).
        """
        if self._json is None:
            media_type, _ = _parse_media_type(self.content_type)
            if not _is_json_type(media_type) or not self.body:
                return None
            if _json_too_deep(self.body):
                raise HTTPError(400, f"request JSON nests deeper than {MAX_JSON_DEPTH} levels")
            try:
                self._json = (json_loads(self.body),)
            except (ValueError, RecursionError, TypeError):
                raise HTTPError(400, "request body is not valid JSON") from None
        return self._json[0]

    @property
    def form(self):
        """Form fields (urlencoded or multipart) as a MultiDict."""
        if self._form is None:
            self._parse_form()
        return self._form

    @property
    def files(self):
        """Uploaded files of a multipart form: a MultiDict of FileUpload."""
        if self._files is None:
            self._parse_form()
        return self._files

    def _parse_form(self):
        media_type, options = _parse_media_type(self.content_type)
        limits = self.limits
        self._files = MultiDict()
        if media_type == "application/x-www-form-urlencoded":
            try:
                text = self.body.decode("ascii")
            except UnicodeDecodeError:
                raise HTTPError(400, "urlencoded form data must be ASCII") from None
            self._form = parse_query_string(text, limits.max_query_params, status=413)
        elif media_type == "multipart/form-data":
            parser = MultipartParser(_multipart_boundary(options), limits)
            parser.feed(self.body)
            self._form, self._files = parser.finish()
        else:
            self._form = MultiDict()

    @property
    def params(self):
        """Query and form fields together (form values come last)."""
        combined = MultiDict(self.query.items())
        for key, value in self.form.items():
            combined.add(key, value)
        return combined

    # -- the snapshot shipped to pool workers --
    def _snapshot(self):
        return _RequestSnapshot(
            _SNAPSHOT_VERSION, self.method, self.raw_path, self.path, self.query_string,
            self.http_version, tuple(self._header_pairs), self._body, self.remote_addr,
            self.scheme, self._host, tuple(self.limits),
            None if self.session is None else dict(self.session))

    @classmethod
    def _from_snapshot(cls, snapshot):
        if snapshot.version != _SNAPSHOT_VERSION:
            raise RuntimeError(
                f"a request snapshot of version {snapshot.version} reached a worker that reads "
                f"version {_SNAPSHOT_VERSION}: run the same pixie_web.py in the server and "
                "its pool workers")
        request = cls(snapshot.method, snapshot.raw_path, snapshot.path, snapshot.query_string,
                      snapshot.http_version, snapshot.header_pairs, snapshot.body,
                      snapshot.remote_addr, snapshot.scheme, snapshot.host)
        request.limits = _ParsingLimits(*snapshot.limits)
        if snapshot.session is not None:  # a copy: changes made in a pool worker are not saved
            request._session = snapshot.session
        return request


# What a pool worker (or an executor= cluster) gets of a request, pickled. ``version`` goes up
# whenever the fields change, so a worker running another pixie_web refuses a snapshot
# instead of misreading it. ``limits`` are the _ParsingLimits, ``session`` a dict copy or None.
_SNAPSHOT_VERSION = 1
_RequestSnapshot = namedtuple("_RequestSnapshot", [
    "version", "method", "raw_path", "path", "query_string", "http_version", "header_pairs",
    "body", "remote_addr", "scheme", "host", "limits", "session"])


# ---- Response --------------------------------------------------------------------------------

_SAMESITE_VALUES = {"lax": "Lax", "strict": "Strict", "none": "None"}
_COOKIE_ATTRIBUTE_RE = re.compile(r"[\x21-\x3a\x3c-\x7e]*")  # visible ASCII except ";"
MAX_COOKIE_SIZE = 4093


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


# validated content type -> its serialised header line (the ones to_response uses first)
_CONTENT_TYPE_LINES = {content_type: f"Content-Type: {content_type}\r\n".encode("latin-1")
                       for content_type in ("text/html; charset=utf-8", "application/json",
                                            "application/octet-stream")}


def _add_headers(headers, extra, replace=False):
    """Add headers from a dict (one value per name) or from pairs (repeated names kept).

    With ``replace``, names given replace the existing values of the same name.
    """
    pairs = list(extra.items()) if hasattr(extra, "items") else list(extra)
    if replace:
        for name in {name.lower() for name, _ in pairs}:
            if name in headers:
                del headers[name]
    for name, value in pairs:
        headers.add(name, value)


class Response:
    """An HTTP response: ``Response(body="", status=200, headers=None, content_type=None,
    cookies=None)`` (``code=`` is accepted for ``status``)."""

    # Slots for what every response has (cheaper to make and read); other attributes, of
    # subclasses or set by users, go to the __dict__, made only when first used.
    __slots__ = ("body", "status", "_headers", "_content_type", "__dict__", "__weakref__")

    def __init__(self, body="", status=200, headers=None, content_type=None, cookies=None,
                 *, code=None):
        self.body = body
        self.status = int(code if code is not None else status)
        self._headers = None
        # Until .headers is used, a lone content type is kept apart: most responses have
        # no other header, and building a Headers object for one costs more than the rest.
        self._content_type = None
        if headers:
            _add_headers(self.headers, headers)
        if content_type is not None:
            if self._headers is None and content_type in _CONTENT_TYPE_LINES:
                self._content_type = content_type     # the setter's usual case, minus its call
            else:
                self.content_type = content_type
        if cookies:
            for name, value in cookies.items():
                self.set_cookie(name, value)

    @property
    def headers(self):
        """Case-insensitive, multi-valued response headers."""
        if self._headers is None:
            self._headers = Headers()
            if self._content_type is not None:
                self._headers["Content-Type"] = self._content_type
                self._content_type = None
        return self._headers

    @property
    def content_type(self):
        """The ``Content-Type`` header (None when not set)."""
        if self._headers is not None:
            return self._headers.get("Content-Type")
        return self._content_type

    @content_type.setter
    def content_type(self, value):
        if self._headers is not None:
            self._headers["Content-Type"] = value
        elif value in _CONTENT_TYPE_LINES:
            self._content_type = value
        else:
            self._content_type = _check_header_value(value, "Content-Type")

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
    ``download="name.ext"`` under that name. When sent, it answers conditional requests
    (``If-None-Match``, ``If-Modified-Since`` → 304) and single ranges (206 / 416) using
    its ``ETag`` and ``Last-Modified``.
    """

    def __init__(self, path, content_type=None, download=None, headers=None, status=200):
        super().__init__(None, status, headers)
        self.path = os.fspath(path)
        if content_type is None:
            content_type = _guess_content_type(self.path)
        self.headers["Content-Type"] = content_type
        if download:
            name = os.path.basename(self.path) if download is True else str(download)
            self.headers["Content-Disposition"] = _content_disposition(name)
        self._size = None          # bytes to send, known once the file is opened
        self._offset = 0
        self._cached = False

    def _prepare(self, request):
        """Open the file and settle status, validators and range for this request."""
        try:
            file = open(self.path, "rb")
        except OSError:
            self._not_found()
            return
        stat = os.fstat(file.fileno())
        if not _stat_is_file(stat):
            file.close()
            self._not_found()
            return
        size = stat.st_size
        etag = f'"{stat.st_mtime_ns:x}-{size:x}"'
        headers = self.headers
        headers["ETag"] = etag
        headers["Last-Modified"] = http_date(stat.st_mtime)
        if self.status != 200:
            self.body, self._size = file, size
            return
        headers["Accept-Ranges"] = "bytes"
        if _not_modified(request, etag, stat.st_mtime):
            file.close()
            self.status, self.body, self._size = 304, b"", None
            return
        start, length = 0, size
        byte_range = _requested_range(request, etag, stat.st_mtime, size)
        if byte_range == "unsatisfiable":
            file.close()
            self.status, self.body, self._size = 416, b"", None
            headers["Content-Range"] = f"bytes */{size}"
            return
        if byte_range is not None:
            start, end = byte_range
            length = end - start + 1
            self.status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if self._cached and size <= CACHED_FILE_MAX_SIZE:
            data = _read_cached_file(self.path, stat.st_ino, stat.st_mtime_ns, size)
            file.close()
            self.body, self._size = data[start:start + length], None
            return
        self.body, self._offset, self._size = file, start, length

    def _not_found(self):
        self.status, self.body, self._size = 404, b"404 Not Found\n", None
        self._headers = Headers([("Content-Type", "text/plain; charset=utf-8")])


def _stat_is_file(file_stat):
    return stat.S_ISREG(file_stat.st_mode)


def _guess_content_type(path):
    import mimetypes
    guessed, _ = mimetypes.guess_type(path)
    content_type = guessed or "application/octet-stream"
    if (content_type.startswith("text/") or content_type in (
            "application/javascript", "application/json", "image/svg+xml")) \
            and "charset" not in content_type:
        content_type += "; charset=utf-8"
    return content_type


def _parse_http_date(value):
    try:
        import email.utils
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _etag_matches(header, etag):
    """Weak comparison of an ``If-None-Match`` list with our ETag (``*`` matches all)."""
    if header.strip() == "*":
        return True
    ours = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == ours for candidate in header.split(","))


def _not_modified(request, etag, mtime):
    if request is None:
        return False
    if_none_match = request._header("if-none-match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, etag)
    if_modified_since = request._header("if-modified-since")
    if if_modified_since is not None:
        since = _parse_http_date(if_modified_since)
        return since is not None and int(mtime) <= since
    return False


_RANGE_RE = re.compile(r"[ \t]*([0-9]{0,18})-([0-9]{0,18})[ \t]*")


def _requested_range(request, etag, mtime, size):
    """``(first, last)`` of one satisfiable range, ``"unsatisfiable"``, or None for the
    whole file (no Range, several ranges, a malformed header, or a stale ``If-Range``)."""
    if request is None:
        return None
    header = request._header("range")
    if header is None or request.method not in ("GET", "HEAD"):
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None         # only one range is served; many ranges get the whole file
    if_range = request._header("if-range")
    if if_range is not None:
        if if_range.startswith(('"', 'W/"')):
            if if_range != etag:
                return None
        elif _parse_http_date(if_range) != float(int(mtime)):
            return None
    match = _RANGE_RE.fullmatch(spec)
    if match is None or match.group(0).strip() == "-":
        return None
    first, last = match.group(1), match.group(2)
    if not first:                       # the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - count), size - 1
    first = int(first)
    if last and int(last) < first:
        return None                     # malformed: ignored, the whole file is sent
    if first >= size:
        return "unsatisfiable"
    return first, min(int(last) if last else size - 1, size - 1)


CACHED_FILE_MAX_SIZE = 1024 * 1024


@functools.lru_cache(maxsize=128)
def _read_cached_file(path, inode, mtime_ns, size):
    """File content keyed by identity, change time and size: an edited file is a new key."""
    with open(path, "rb") as file:
        return file.read(size)


_WINDOWS_DEVICE_RE = re.compile(r"(?i)(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?")
_UNSAFE_PATH_CHARS_RE = re.compile(r"[\x00-\x1f\x7f\\:]")


def _resolve_static_path(filename, root, follow_symlinks=False):
    """The real path of ``filename`` inside ``root``; HTTPError 400 for forbidden characters,
    404 for anything missing or outside the root (the same answer, so nothing leaks)."""
    if _UNSAFE_PATH_CHARS_RE.search(filename):
        raise HTTPError(400, "invalid character in the file name")
    parts = filename.split("/")
    if (not filename or filename.startswith("/")
            or any(part in ("", ".", "..") or _WINDOWS_DEVICE_RE.fullmatch(part)
                   for part in parts)):
        raise HTTPError(404)
    root_real = os.path.realpath(root)
    candidate = os.path.join(root_real, *parts)
    resolved = os.path.abspath(candidate) if follow_symlinks else os.path.realpath(candidate)
    if os.path.commonpath([root_real, resolved]) != root_real or not os.path.isfile(resolved):
        raise HTTPError(404)
    return resolved


def static_file(filename, root, mimetype=None, download=False, max_age=None,
                follow_symlinks=False):
    """A FileResponse for ``filename`` under ``root``, refusing any path that leaves it.

    Missing files and escape attempts both give 404; a backslash, ``:`` or a control
    character in the name gives 400. ``max_age`` adds ``Cache-Control: public, max-age=N``.
    """
    path = _resolve_static_path(filename, root, follow_symlinks)
    response = FileResponse(path, content_type=mimetype, download=download or None)
    if max_age is not None:
        response.headers["Cache-Control"] = f"public, max-age={int(max_age)}"
    return response


def cached_file(filename, root, mimetype=None, download=False, max_age=None,
                follow_symlinks=False):
    """Like static_file, but small files (up to 1 MiB) are served from a bounded in-memory
    LRU cache keyed by (path, inode, mtime, size), so a changed file is never served stale."""
    response = static_file(filename, root, mimetype, download, max_age, follow_symlinks)
    response._cached = True
    return response


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


_RESPONSE_NEW = object.__new__


def to_response(result):
    """Convert anything a handler may return into a Response: str (HTML), bytes, dict/list
    (JSON), None (204), a tuple, a Response, a generator or file (streamed)."""
    kind = type(result)
    # The common cases first, by exact type (the same results as the general ones below).
    if kind is str:
        body, content_type = result.encode("utf-8"), "text/html; charset=utf-8"
    elif kind is dict or kind is list:
        body, content_type = json_dumps(result), "application/json"
    elif kind is bytes:
        body, content_type = result, "application/octet-stream"
    else:
        return _to_response(result)
    # A 200 of a content type _CONTENT_TYPE_LINES knows: no __init__ and no checks needed.
    response = _RESPONSE_NEW(Response)
    response.body = body
    response.status = 200
    response._headers = None
    response._content_type = content_type
    return response


def _to_response(result):
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
    if hasattr(type(result), "__dataclass_fields__"):       # a dataclass: JSON
        return Response(json_dumps(result), 200, content_type="application/json")
    if isinstance(result, tuple) and 2 <= len(result) <= 3:
        response = to_response(result[0])
        response.status = int(result[1])
        if len(result) == 3 and result[2]:
            _add_headers(response.headers, result[2], replace=True)
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


# ---- Templates -------------------------------------------------------------------------------

#: Directories searched for templates by name, in order.
TEMPLATE_PATH = ["./views/"]


class TemplateError(Exception):
    """A template that cannot be found, compiled or rendered; names the template and line."""


_CONTINUATION_KEYWORDS = {"elif", "else", "except", "finally"}
_BLOCK_KEYWORDS = {"if", "for", "while", "with", "try", "def", "class", "async"} | \
    _CONTINUATION_KEYWORDS
_STATEMENT_KEYWORD_RE = re.compile(r"[A-Za-z_]+")
_STRING_LITERAL_RE = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*\"""")


def _html_escape(value):
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    # what html.escape(value, quote=True) does, without importing html and html.entities
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#x27;"))


def _raw_text(value):
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _without_comment(code):
    stripped = _STRING_LITERAL_RE.sub(lambda m: "x" * len(m.group(0)), code)
    cut = stripped.find("#")
    return (code[:cut] if cut >= 0 else code).rstrip()


def _bracket_balance(code):
    """Open minus closed brackets outside strings and comments (a statement continues
    on the next line while this is positive)."""
    code = _without_comment(_STRING_LITERAL_RE.sub("''", code))
    return sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")


class _TemplateCompiler:
    """Translate template source into Python: text becomes ``_emit((...))`` calls, ``%`` lines
    and ``<% %>`` blocks become statements, indentation comes from ``:`` and ``end``."""

    def __init__(self, source, name):
        self.name = name
        self.lines = []          # generated Python lines
        self.origin = []         # the template line of each generated line
        self.indent = 0
        self.pending = ""        # a statement continued on the next line (open bracket)
        self.pending_line = 0
        self.pending_balance = 0
        self.translate(source)

    def emit(self, code, line):
        self.lines.append("    " * self.indent + code)
        self.origin.append(line)

    def text(self, text, line):
        if not text:
            return
        parts = []
        position = 0
        while True:      # str.find, not a regex: a line full of "{{" stays linear
            start = text.find("{{", position)
            end = text.find("}}", start + 2) if start >= 0 else -1
            if end < 0:
                break
            if start > position:
                parts.append(repr(text[position:start]))
            raw = text[start + 2] == "!"
            expression = text[start + 3 if raw else start + 2:end].strip()
            if not expression:
                raise TemplateError(f"{self.name}, line {line}: empty {{{{ }}}} expression")
            parts.append(("_raw(" if raw else "_escape(") + expression + ")")
            position = end + 2
        if position < len(text):
            parts.append(repr(text[position:]))
        self.emit("_emit((" + ", ".join(parts) + ",))", line)

    def code(self, code, line):
        balance = _bracket_balance(code)      # per physical line: comments end at the line
        if self.pending:
            code = self.pending + "\n" + code
            line = self.pending_line
            balance += self.pending_balance
        if balance > 0:
            self.pending, self.pending_line, self.pending_balance = code, line, balance
            return
        self.pending = ""
        statement = code.strip()
        bare = _without_comment(statement)
        if not bare:
            return
        keyword_match = _STATEMENT_KEYWORD_RE.match(bare)
        keyword = keyword_match.group(0) if keyword_match else ""
        if bare == "end":
            if self.indent == 0:
                raise TemplateError(f"{self.name}, line {line}: 'end' without an open block")
            self.indent -= 1
            return
        if keyword in _BLOCK_KEYWORDS and ":" not in bare:
            raise TemplateError(f"{self.name}, line {line}: '{keyword}' needs a ':'")
        if keyword in _CONTINUATION_KEYWORDS:
            if self.indent == 0:
                raise TemplateError(f"{self.name}, line {line}: '{keyword}' without an open block")
            self.indent -= 1
        for offset, physical in enumerate(statement.split("\n")):
            # continuation lines sit inside brackets, where Python ignores indentation
            self.emit(physical.strip(), line + offset)
        if bare.endswith(":"):
            self.indent += 1

    def translate(self, source):
        in_block = False
        for number, line in enumerate(source.splitlines(keepends=True), 1):
            if in_block:
                code, closed, rest = line.partition("%>")
                self.code(code, number)
                if closed:
                    in_block = False
                    if rest.strip():
                        self.text(rest, number)
                continue
            stripped = line.lstrip()
            if stripped.startswith("%%"):
                self.text(line.replace("%%", "%", 1), number)
            elif stripped.startswith("%"):
                self.code(stripped[1:], number)
            elif "<%" in line:
                before, _, after = line.partition("<%")
                if before.strip():
                    self.text(before, number)
                code, closed, rest = after.partition("%>")
                self.code(code, number)
                if closed:
                    if rest.strip():
                        self.text(rest, number)
                else:
                    in_block = True
            else:
                self.text(line, number)
        if in_block or self.pending:
            raise TemplateError(f"{self.name}: unclosed code block at the end of the template")
        if self.indent:
            raise TemplateError(f"{self.name}: {self.indent} block(s) not closed with '% end'")


class SimpleTemplate:
    """A compiled template. ``SimpleTemplate(source, name).render(**variables)`` → str.

    Template source is code: render only templates you trust.
    """

    def __init__(self, source, name="<template>", directory=None):
        self.name = name
        self.directory = directory
        compiler = _TemplateCompiler(source, name)
        self._origin = compiler.origin
        self._filename = f"<template {name}>"
        try:
            self._code = compile("\n".join(compiler.lines) or "pass", self._filename, "exec")
        except SyntaxError as error:
            line = self._template_line(error.lineno)
            raise TemplateError(f"{name}, line {line}: {error.msg}") from None

    def _template_line(self, generated_line):
        if generated_line and 0 < generated_line <= len(self._origin):
            return self._origin[generated_line - 1]
        return "?"

    def render(self, lookup=None, /, **variables):
        """The text of the template with ``variables``. Includes and rebases are looked up
        beside this template, then in ``lookup`` (a list of directories; default
        TEMPLATE_PATH)."""
        output = []
        env = dict(variables)
        rebase_to = []
        directories = (([self.directory] if self.directory else [])
                       + list(TEMPLATE_PATH if lookup is None else lookup))

        def include(name, /, **kwargs):
            output.append(_load_template(name, directories).render(
                lookup, **{**variables, **kwargs}))

        def rebase(name, /, **kwargs):
            rebase_to.append((name, kwargs))

        env.update(_emit=output.extend, _escape=_html_escape, _raw=_raw_text, include=include,
                   rebase=rebase, get=lambda key, default=None: env.get(key, default),
                   defined=lambda key: key in env,
                   setdefault=lambda key, value: env.setdefault(key, value))
        try:
            exec(self._code, env)
        except (TemplateError, HTTPError):
            raise
        except Exception as error:
            line = "?"
            trace = error.__traceback__
            while trace is not None:
                if trace.tb_frame.f_code.co_filename == self._filename:
                    line = self._template_line(trace.tb_lineno)
                trace = trace.tb_next
            raise TemplateError(f"{self.name}, line {line}: {type(error).__name__}: {error}") \
                from error
        text = "".join(output)
        if rebase_to:
            name, kwargs = rebase_to[-1]
            return _load_template(name, directories).render(
                lookup, **{**variables, **kwargs, "base": text})
        return text


def _is_template_source(text):
    return "\n" in text or "{{" in text or re.match(r"\s*%", text) is not None


@functools.lru_cache(maxsize=128)
def _compile_source(source):
    return SimpleTemplate(source, "<string>")


@functools.lru_cache(maxsize=256)
def _compile_file(path, mtime_ns):
    """Keyed by modification time: an edited template is recompiled on its next use."""
    with open(path, encoding="utf-8") as handle:
        return SimpleTemplate(handle.read(), os.path.basename(path), os.path.dirname(path))


def _find_template(name, directories):
    parts = name.replace("\\", "/").split("/")
    if not name or "\x00" in name or os.path.isabs(name) or ".." in parts or ":" in name:
        raise TemplateError(f"invalid template name {name!r}: names are relative and "
                            "stay inside the template directories")
    for directory in directories:
        root = os.path.realpath(directory)
        for candidate in (name, name + ".tpl", name + ".html"):
            path = os.path.realpath(os.path.join(root, candidate))
            if os.path.commonpath([root, path]) == root and os.path.isfile(path):
                return path
    raise TemplateError(f"template {name!r} not found in {list(directories)}")


def _load_template(name_or_source, directories):
    if _is_template_source(name_or_source):
        return _compile_source(name_or_source)
    path = _find_template(name_or_source, directories)
    return _compile_file(path, os.stat(path).st_mtime_ns)


def template(name_or_source, /, template_lookup=None, **variables):
    """Render a template (source, or a name looked up in TEMPLATE_PATH) with ``variables``.

    ``template_lookup``, a list of directories, replaces TEMPLATE_PATH for this call and
    the includes and rebases it makes (so an app need not change the global list)::

        template("index", template_lookup=["/srv/board/views"], title="Home")
    """
    lookup = TEMPLATE_PATH if template_lookup is None else template_lookup
    return _load_template(name_or_source, lookup).render(template_lookup, **variables)


def view(name, template_lookup=None, **defaults):
    """Decorator: a handler returning a dict is rendered with the template ``name`` (looked
    up in ``template_lookup`` when given, else TEMPLATE_PATH); other return values pass
    through unchanged."""
    def render(result):
        if isinstance(result, dict):
            return template(name, template_lookup, **{**defaults, **result})
        return result

    def decorator(handler):
        if _is_coroutine_function(handler):
            @functools.wraps(handler)
            async def async_view(*args, **kwargs):
                return render(await handler(*args, **kwargs))
            return async_view

        @functools.wraps(handler)
        def sync_view(*args, **kwargs):
            return render(handler(*args, **kwargs))
        return sync_view
    return decorator


# ---- OpenAPI ---------------------------------------------------------------------------------
# app.openapi() describes every HTTP route as an OpenAPI 3.1 document (SPEC 14): paths in
# ``{name}`` form, parameters and request bodies from each route's _BindingPlan, responses
# from the handler's return annotation, dataclasses and TypedDicts as components/schemas
# named after their classes (JSON Schema 2020-12, the dialect of OpenAPI 3.1). The docs page
# is that document rendered by the template engine above: one self-contained HTML page, no
# script, nothing loaded from elsewhere. Neither is a route: App serves both when no route
# takes a GET or HEAD of their URLs (_openapi_fallback), so app.routes() lists only the
# app's own routes.
#
# Choices a reader may look for: Decimal is ``anyOf [number, numeric string]`` (what the
# binder accepts; pixie_web writes Decimals as strings, which the string branch covers);
# ``-> None`` is a 204 (what to_response sends for None); a handler without a return
# annotation gets a 200 without a schema (it may send HTML as well as JSON); bounds on dates
# are written as ``formatMinimum``-style keywords (JSON Schema's minimum is for numbers).

_OPENAPI_VERSION = "3.1.0"
_DEFAULT_API_TITLE = "pixie_web app"
_DEFAULT_API_VERSION = "0.1.0"
# The methods an OpenAPI 3.1 path item can hold, in the order the document lists them
# (HEAD and OPTIONS are answered by pixie_web itself; WEBSOCKET is no HTTP operation).
_DOCUMENTED_METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE", "TRACE")
_SCHEMA_REF = "#/components/schemas/"
_DECIMAL_STRING_PATTERN = r"^\s*[+-]?(?:[0-9_]+(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][+-]?[0-9]+)?\s*$"
_COMPONENT_NAME_RE = re.compile(r"[^A-Za-z0-9._-]")
_OPERATION_ID_RE = re.compile(r"[^A-Za-z0-9_]")
# Return annotations of streams (collections.abc names): a 200 of no known content type.
_STREAM_ORIGINS = ("Iterator", "Iterable", "Generator", "AsyncIterator", "AsyncIterable",
                   "AsyncGenerator")
# A path wildcard's schema by its filter, when the handler does not annotate it.
_WILDCARD_SCHEMAS = {"": {"type": "string"}, "int": {"type": "integer"},
                     "float": {"type": "number"}, "path": {"type": "string"}}


def _validation_schemas():
    """The schemas of the 422 body (SPEC 14), named as FastAPI names them, so that clients
    generated for either agree."""
    location = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    return {
        "HTTPValidationError": {
            "title": "HTTPValidationError", "type": "object",
            "properties": {"detail": {"title": "Detail", "type": "array",
                                      "items": {"$ref": _SCHEMA_REF + "ValidationError"}}}},
        "ValidationError": {
            "title": "ValidationError", "type": "object",
            "properties": {"loc": {"title": "Location", "type": "array", "items": location},
                           "msg": {"title": "Message", "type": "string"},
                           "type": {"title": "Error Type", "type": "string"}},
            "required": ["loc", "msg", "type"]},
    }


def _validation_response():
    return {"description": "Validation Error", "content": {"application/json": {
        "schema": {"$ref": _SCHEMA_REF + "HTTPValidationError"}}}}


def _json_form(value):
    """``value`` as pixie_web writes it in JSON (a default in a schema), or _UNBOUND when
    it has no JSON form (NaN and infinities included)."""
    def refuse(constant):
        raise ValueError(constant)
    try:
        return json.loads(_json_dumps_stdlib(value), parse_constant=refuse)
    except (TypeError, ValueError, RecursionError):
        return _UNBOUND


def _add_default(schema, default):
    """The default in the schema when it has a JSON form; a None default of a type that
    does not allow None (``ids: list[int] = None``: "not given") is left out, as a default
    must be valid against its schema."""
    value = _json_form(default)
    if value is _UNBOUND or value is None and not any(
            choice.get("type") == "null" for choice in [schema, *schema.get("anyOf", ())]):
        return
    schema["default"] = value


def _own_doc(kind):
    """A class's own docstring: not one inherited, nor the signature dataclasses writes,
    nor Enum's "An enumeration." (Python 3.11)."""
    doc = inspect.getdoc(kind) if isinstance(kind.__dict__.get("__doc__"), str) else None
    if not doc or doc.startswith(kind.__name__ + "(") or doc == "An enumeration.":
        return None
    return doc


class _Schemas:
    """JSON Schemas of annotations. A dataclass or TypedDict becomes a component named after
    its class (module-qualified when two classes share a name) and is referred to by $ref;
    recursive structures refer to themselves."""

    def __init__(self, reserved=()):
        self.components = {}          # component name -> schema
        self._names = {}              # class -> component name
        self._taken = set(reserved)

    def of(self, annotation):
        """The schema of ``annotation``: its Param's constraints on the type they constrain
        (inside ``anyOf`` for ``X | None``), its description on the whole."""
        annotation, param = _annotated(annotation, None)
        schema = self._constrained(annotation, param)
        if param is not None and param.description and "description" not in schema:
            schema["description"] = param.description
        return schema

    def _constrained(self, annotation, param):
        import typing
        annotation, param = _annotated(annotation, param)
        if not _is_union(annotation):
            schema = self._kind(annotation)
            schema.update(_constraint_keywords(param, annotation))
            return schema
        members = typing.get_args(annotation)
        choices = [self._constrained(member, param) for member in members
                   if member is not type(None)]
        if len(choices) < len(members):
            choices.append({"type": "null"})
        return {"anyOf": choices} if len(choices) > 1 else choices[0]

    def _kind(self, kind):
        """The schema of an annotation without Annotated or unions."""
        import collections.abc
        import typing
        origin = typing.get_origin(kind)
        arguments = typing.get_args(kind)
        if kind is None or kind is type(None):
            return {"type": "null"}
        if origin is typing.Literal:
            return _literal_schema(arguments)
        if kind in (list, set, frozenset, tuple) or origin in (
                list, set, frozenset, collections.abc.Sequence, collections.abc.Set):
            schema = {"type": "array"}
            if arguments:
                schema["items"] = self.of(arguments[0])
            if frozenset in (kind, origin) or set in (kind, origin):
                schema["uniqueItems"] = True
            return schema
        if origin is tuple:
            if len(arguments) == 2 and arguments[1] is Ellipsis:
                return {"type": "array", "items": self.of(arguments[0])}
            return {"type": "array", "prefixItems": [self.of(each) for each in arguments],
                    "minItems": len(arguments), "maxItems": len(arguments)}
        if kind is dict or origin in (dict, collections.abc.Mapping):
            schema = {"type": "object"}
            if len(arguments) == 2:
                schema["additionalProperties"] = self.of(arguments[1])
            return schema
        if _is_structure(kind):
            return {"$ref": _SCHEMA_REF + self._component(kind)}
        return _scalar_schema(kind)

    def _component(self, kind):
        """The component name of a structure, its schema built at the first use."""
        name = self._names.get(kind)
        if name is None:
            name = kind.__name__
            if name in self._taken or not name.isidentifier():
                name = _COMPONENT_NAME_RE.sub("_", f"{kind.__module__}.{kind.__qualname__}")
            self._names[kind] = name
            self._taken.add(name)
            self.components[name] = {}       # a recursive structure refers to it meanwhile
            self.components[name] = self._structure(kind)
        return name

    def _structure(self, kind):
        properties, required = {}, []
        try:
            fields = _structure_fields(kind)
        except Exception:                    # annotations that cannot be evaluated
            fields = []
        for name, annotation, is_required, default in fields:
            schema = self.of(annotation)
            if default is not _UNBOUND and default[0] == "value":
                _add_default(schema, default[1])
            properties[name] = schema
            if is_required:
                required.append(name)
        schema = {"title": kind.__name__, "type": "object", "properties": properties}
        if required:
            schema["required"] = required
        doc = _own_doc(kind)
        if doc:
            schema["description"] = doc
        return schema


def _annotated(annotation, param):
    """``(type, Param)`` of ``Annotated[type, Param(...)]`` (a TypedDict's Required and
    NotRequired taken off too); ``param`` when there is none."""
    import typing
    if typing.get_origin(annotation) in (typing.Required, typing.NotRequired):
        (annotation,) = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        param = next((extra for extra in annotation.__metadata__
                      if isinstance(extra, Param)), None) or param
        annotation = annotation.__origin__
    return annotation, param


def _scalar_schema(kind):
    """The schema of a scalar type; ``{}`` (anything) for a type JSON Schema cannot say."""
    import decimal
    import enum
    import uuid
    from datetime import date, datetime, time
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if kind in simple:
        return {"type": simple[kind]}
    formats = [(datetime, "date-time"), (date, "date"), (time, "time"), (uuid.UUID, "uuid")]
    for known, format_name in formats:
        if kind is known:
            return {"type": "string", "format": format_name}
    if kind is decimal.Decimal:
        return {"anyOf": [{"type": "number"},
                          {"type": "string", "pattern": _DECIMAL_STRING_PATTERN}]}
    if kind in (bytes, bytearray) or kind is FileUpload:
        return {"type": "string", "format": "binary"}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        schema = _literal_schema([member.value for member in kind])
        schema["title"] = kind.__name__
        doc = _own_doc(kind)
        if doc:
            schema["description"] = doc
        return schema
    return {}


def _literal_schema(values):
    """``const`` for one value, else ``enum``; with the JSON type when they share one."""
    import enum
    values = [value.value if isinstance(value, enum.Enum) else value for value in values]
    written = [_json_form(value) for value in values]
    written = [value for value in written if value is not _UNBOUND]
    types = {_json_type(value) for value in written}
    schema = {"type": types.pop()} if len(types) == 1 else {}
    if len(written) == 1:
        schema["const"] = written[0]
    elif written:
        schema["enum"] = written
    return schema


def _json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}[type(value)]


# Param's constraints as JSON Schema keywords: numbers, dates (formatMinimum...: minimum is
# for numbers only), and lengths (of strings, or of arrays).
_NUMBER_BOUNDS = (("ge", "minimum"), ("gt", "exclusiveMinimum"), ("le", "maximum"),
                  ("lt", "exclusiveMaximum"))
_DATE_BOUNDS = (("ge", "formatMinimum"), ("gt", "formatExclusiveMinimum"),
                ("le", "formatMaximum"), ("lt", "formatExclusiveMaximum"))


def _constraint_keywords(param, kind):
    import decimal
    import typing
    if param is None:
        return {}
    keywords = {}
    is_number = kind in (int, float, decimal.Decimal)
    for name, keyword in _NUMBER_BOUNDS if is_number else _DATE_BOUNDS:
        bound = getattr(param, name)
        if isinstance(bound, decimal.Decimal):
            bound = float(bound)             # a number in JSON Schema, as JSON has no Decimal
        if bound is not None and _json_form(bound) is not _UNBOUND:
            keywords[keyword] = _json_form(bound)
    is_list = kind in (list, set, frozenset, tuple) or typing.get_origin(kind) in (
        list, set, frozenset, tuple)
    if param.min_length is not None:
        keywords["minItems" if is_list else "minLength"] = param.min_length
    if param.max_length is not None:
        keywords["maxItems" if is_list else "maxLength"] = param.max_length
    if param.pattern is not None:
        keywords["pattern"] = param.pattern
    return keywords


def _openapi_document(app):
    """The OpenAPI 3.1 document (a dict) of every HTTP route of ``app`` (SPEC 14)."""
    schemas = _Schemas(reserved=("HTTPValidationError", "ValidationError"))
    paths, operation_ids, validated = {}, set(), False
    for route in app.routes():
        if route.method not in _DOCUMENTED_METHODS:
            continue
        path_item = paths.setdefault(_openapi_path(route.path), {})
        method = route.method.lower()
        if method in path_item:       # /a/<id:int> and /a/<id> are one OpenAPI path: the
            continue                  # router tries the first registered first
        path_item[method] = _operation(route, schemas, operation_ids)
        validated = validated or route.binding is not None
    components = dict(sorted(schemas.components.items()))
    if validated:
        components.update(_validation_schemas())
    document = {"openapi": _OPENAPI_VERSION,
                "info": {"title": getattr(app, "title", None) or _DEFAULT_API_TITLE,
                         "version": getattr(app, "version", None) or _DEFAULT_API_VERSION},
                "paths": paths}
    if components:
        document["components"] = {"schemas": components}
    return document


def _openapi_path(path):
    """``/carts/<cart_id:int>/items`` → ``/carts/{cart_id}/items``."""
    return _WILDCARD_RE.sub(lambda match: "{" + match.group(1) + "}", path)


def _handler_function(handler):
    """The function behind a handler (partials unwrapped); None for other callables."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    return handler if inspect.isroutine(handler) else None


def _operation(route, schemas, operation_ids):
    function = _handler_function(route.handler)
    operation_id = _OPERATION_ID_RE.sub(
        "_", f"{route.name or getattr(function, '__name__', 'handler')}_{route.method.lower()}")
    unique, count = operation_id, 1
    while unique in operation_ids:
        count += 1
        unique = f"{operation_id}_{count}"
    operation_ids.add(unique)
    operation = {"operationId": unique}
    doc = inspect.getdoc(function) if function is not None else None
    if doc:
        summary, _, description = doc.partition("\n")
        operation["summary"] = summary.strip()
        if description.strip():
            operation["description"] = description.strip()
    binders = route.binding.binders if route.binding is not None else ()
    parameters = _path_parameters(route, binders, schemas) + [
        _parameter(binder, schemas) for binder in binders
        if binder.source in ("params", "query", "header", "cookie")]
    if parameters:
        operation["parameters"] = parameters
    body = _request_body(binders, schemas)
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = _responses(function, schemas)
    if route.binding is not None:
        operation["responses"]["422"] = _validation_response()
    return operation


def _path_parameters(route, binders, schemas):
    """One parameter per wildcard: typed by the handler's annotation, else by its filter."""
    annotated = {binder.name: binder for binder in binders if binder.source == "path"}
    parameters = []
    for match in _WILDCARD_RE.finditer(route.path):
        name, kind, config = match.group(1), match.group(2) or "", match.group(3)
        binder = annotated.get(name)
        if binder is not None:
            schema = schemas.of(binder.annotation)
        elif kind == "re":
            schema = {"type": "string", "pattern": f"^(?:{config or '[^/]+'})$"}
        else:
            schema = dict(_WILDCARD_SCHEMAS.get(kind, {"type": "string"}))
        parameter = {"name": name, "in": "path", "required": True, "schema": schema}
        if binder is not None and binder.param is not None and binder.param.description:
            parameter["description"] = binder.param.description
        parameters.append(parameter)
    return parameters


def _parameter(binder, schemas):
    """A query, header or cookie parameter (``params``: the query, then the form, is
    described as the query)."""
    schema = schemas.of(binder.annotation)
    parameter = {"name": binder.key, "in": "query" if binder.source == "params" else
                 binder.source, "required": binder.required, "schema": schema}
    if not binder.required:
        _add_default(schema, binder.default)
    if binder.param is not None and binder.param.description:
        parameter["description"] = binder.param.description
    return parameter


def _object_schema(binders, schemas):
    """An object of the fields ``binders`` read from a body (JSON keys or form fields)."""
    properties, required = {}, []
    for binder in binders:
        properties[binder.key] = schema = schemas.of(binder.annotation)
        if binder.required:
            required.append(binder.key)
        else:
            _add_default(schema, binder.default)
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _without_none(annotation):
    """``(type, Param or None)`` of ``Annotated[X | None, Param(...)]`` and the like."""
    import typing
    annotation, param = _annotated(annotation, None)
    if _is_union(annotation):
        members = [member for member in typing.get_args(annotation)
                   if member is not type(None)]
        if len(members) == 1:
            annotation, param = _annotated(members[0], param)
    return annotation, param


def _request_body(binders, schemas):
    """The requestBody: a structure ("body") and JSON fields ("json") as application/json
    (a flat structure as a urlencoded form too); form fields and files as multipart."""
    body = next((binder for binder in binders if binder.source == "body"), None)
    json_fields = [binder for binder in binders if binder.source == "json"]
    form_fields = [binder for binder in binders if binder.source in ("form", "files")]
    content, description = {}, None
    if body is not None or json_fields:
        parts = []
        if body is not None:
            kind, param = _without_none(body.annotation)
            parts.append(schemas.of(kind))
            description = param.description if param is not None else None
        if json_fields:
            parts.append(_object_schema(json_fields, schemas))
        content["application/json"] = {"schema": parts[0] if len(parts) == 1
                                       else {"allOf": parts}}
        is_flat = body is not None and body.convert[1] is not None   # its form converter
        if is_flat and not json_fields and not form_fields:
            content["application/x-www-form-urlencoded"] = {"schema": parts[0]}
    if form_fields:
        form_schema = _object_schema(form_fields, schemas)
        content["multipart/form-data"] = {"schema": form_schema}
        if all(binder.source == "form" for binder in form_fields):
            content["application/x-www-form-urlencoded"] = {"schema": form_schema}
    if not content:
        return None
    request_body = {"content": content, "required": any(
        binder.required for binder in [body, *json_fields, *form_fields] if binder)}
    if description:
        request_body["description"] = description
    return request_body


def _responses(function, schemas):
    """The success response from the return annotation, as to_response would send it:
    str → HTML, bytes → octet-stream, None → 204, a Response or a stream → no schema,
    anything else → JSON."""
    import typing
    ok = {"description": "Successful Response"}
    try:
        annotation = typing.get_type_hints(function, include_extras=True).get("return", _UNBOUND)
    except Exception:                    # no function, or annotations that cannot be evaluated
        annotation = _UNBOUND
    if annotation is _UNBOUND:
        return {"200": ok}
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = annotation.__origin__
    members = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    values = [member for member in members if member not in (None, type(None))]
    if not values:
        return {"204": {"description": "No Content"}}
    responses = {"200": ok}
    if len(values) < len(members):       # X | None: None is sent as a 204
        responses["204"] = {"description": "No Content"}
    media_type = _response_media_type(values)
    if media_type is not None:
        schema = schemas.of(typing.Union[tuple(values)] if len(values) > 1 else values[0])
        ok["content"] = {media_type: {"schema": schema}}
    return responses


def _response_media_type(kinds):
    """The content type to_response gives values of ``kinds``; None when it cannot be said
    (a Response, a stream, a (body, status) tuple)."""
    import typing
    origins = [typing.get_origin(kind) or kind for kind in kinds]
    if all(origin is str for origin in origins):
        return "text/html"
    if all(origin in (bytes, bytearray) for origin in origins):
        return "application/octet-stream"
    for origin in origins:
        if (isinstance(origin, type) and issubclass(origin, Response)) or origin is tuple or (
                getattr(origin, "__module__", "") == "collections.abc"
                and origin.__name__ in _STREAM_ORIGINS):
            return None
    return "application/json"


# -- the docs page: the document as HTML, made with the template engine --

_DOCS_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} {{version}}</title>
<style>
:root { --text: #1c1e21; --muted: #5f6368; --line: #dadce0; --card: #fff; --page: #f5f6f8;
        --code: #eef0f3; --link: #0b57d0; --required: #c62828; }
@media (prefers-color-scheme: dark) {
  :root { --text: #e8eaed; --muted: #a7abb0; --line: #3c4043; --card: #202124;
          --page: #17181a; --code: #2b2d30; --link: #8ab4f8; --required: #f28b82; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--text);
       font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 64rem; margin: 0 auto; padding: 1rem; }
a { color: var(--link); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
            font-size: .9em; }
code { background: var(--code); padding: .05em .3em; border-radius: 4px;
       overflow-wrap: anywhere; }
pre { background: var(--code); padding: .75rem; border-radius: 6px; overflow-x: auto;
      white-space: pre-wrap; overflow-wrap: anywhere; }
h1 { margin: .5rem 0 0; font-size: 1.6rem; overflow-wrap: anywhere; }
header p { margin: .25rem 0 1rem; color: var(--muted); }
h2 { font-size: 1.25rem; margin: 2rem 0 .75rem; }
h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
nav ul { list-style: none; padding: 0; margin: 0; }
nav li { margin: .25rem 0; display: flex; gap: .5rem; align-items: baseline; }
nav .entry { min-width: 0; overflow-wrap: anywhere; }
.card { background: var(--card); border: 1px solid var(--line); border-left-width: 6px;
        border-radius: 8px; padding: .75rem 1rem; margin: 0 0 1rem; }
.operation-head { display: flex; flex-wrap: wrap; gap: .5rem; align-items: baseline; }
.operation-head .path { font-size: 1.05rem; font-weight: 600; min-width: 0;
                        background: none; padding: 0; }
.badge { display: inline-block; min-width: 4.8rem; text-align: center; color: #fff;
         font-weight: 700; font-size: .8rem; letter-spacing: .03em; padding: .15rem .4rem;
         border-radius: 4px; flex: none; background: #555; }
.method-get { --method: #1565c0; } .method-post { --method: #2e7d32; }
.method-put { --method: #b45309; } .method-patch { --method: #00796b; }
.method-delete { --method: #c62828; } .method-trace { --method: #555; }
.badge[class*="method-"] { background: var(--method); }
.card[class*="method-"] { border-left-color: var(--method); }
.summary { margin: .35rem 0 0; font-weight: 600; }
.description { margin: .35rem 0 0; white-space: pre-line; }
.muted { color: var(--muted); font-size: .9rem; }
.required { color: var(--required); font-size: .8rem; font-weight: 600; }
table { width: 100%; border-collapse: collapse; font-size: .92rem; margin: .25rem 0 .5rem; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem;
         border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
th { color: var(--muted); font-weight: 600; font-size: .85rem; }
table.fields, table.responses { table-layout: fixed; }
.column-name { width: 20%; } .column-in { width: 9%; } .column-type { width: 26%; }
.column-constraints { width: 25%; } .column-status { width: 12%; }
.column-description { width: 28%; }
.card > :first-child { margin-top: 0; }
.media { margin: .3rem 0; }
.type { display: inline-flex; flex-wrap: wrap; gap: 0 .4em; font-size: .9em;
        font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
        background: var(--code); padding: .05em .35em; border-radius: 4px; }
.type > * { overflow-wrap: anywhere; min-width: 0; }
@media (max-width: 40rem) {
  main { padding: .6rem; }
  .card { padding: .6rem .7rem; }
  table, tbody, tr, td { display: block; width: 100%; }
  thead { display: none; }
  tr { padding: .35rem 0; border-bottom: 1px solid var(--line); }
  td { border: 0; padding: .1rem 0; }
  td[data-label]::before { content: attr(data-label) ": "; color: var(--muted);
                           font-size: .85rem; }
  td[data-label=""]::before { content: none; }
  .responses td:nth-child(-n+2), .fields td.name, .fields td.in {
    display: inline-block; width: auto; margin-right: .6rem; }
}
</style>
</head>
<body>
<main>
% def type_html(pieces):
<span class="type">
%   for text, ref in pieces:
%     if ref:
<a href="#schema-{{ref}}">{{text}}</a>
%     else:
<span>{{text}}</span>
%     end
%   end
</span>
% end
% def fields_table(rows, where_column):
<table class="fields">
<thead><tr><th class="column-name">Name</th>
%   if where_column:
<th class="column-in">In</th>
%   end
<th class="column-type">Type</th><th class="column-constraints">Constraints</th>
<th>Description</th></tr></thead>
<tbody>
%   for row in rows:
<tr><td class="name" data-label=""><code>{{row["name"]}}</code>
%     if row["required"]:
<span class="required">required</span>
%     end
</td>
%     if where_column:
<td class="in" data-label="In">{{row["in"]}}</td>
%     end
<td data-label="Type">
%     type_html(row["type"])
</td>
%     if row["constraints"]:
<td data-label="Constraints">{{row["constraints"]}}</td>
%     else:
<td></td>
%     end
%     if row["description"]:
<td data-label="Description">{{row["description"]}}</td>
%     else:
<td></td>
%     end
</tr>
%   end
</tbody>
</table>
% end
<header>
<h1>{{title}}</h1>
<p>Version {{version}} &middot; OpenAPI {{openapi_version}}
% if openapi_url:
&middot; <a href="{{openapi_url}}">{{openapi_url}}</a>
% end
</p>
</header>
% if operations:
<nav aria-label="Operations">
<h2>Operations</h2>
<ul>
%   for operation in operations:
<li><span class="badge method-{{operation["method"].lower()}}">{{operation["method"]}}</span>
<span class="entry"><a href="#{{operation["anchor"]}}">{{operation["path"]}}</a>
%     if operation["summary"]:
<span class="muted">{{operation["summary"]}}</span>
%     end
</span></li>
%   end
</ul>
</nav>
% else:
<p class="muted">This application has no documented operations.</p>
% end
% for operation in operations:
<section class="card method-{{operation["method"].lower()}}" id="{{operation["anchor"]}}">
<div class="operation-head">
<span class="badge method-{{operation["method"].lower()}}">{{operation["method"]}}</span>
<code class="path">{{operation["path"]}}</code>
</div>
%   if operation["summary"]:
<p class="summary">{{operation["summary"]}}</p>
%   end
%   if operation["description"]:
<p class="description">{{operation["description"]}}</p>
%   end
<p class="muted">operationId <code>{{operation["operation_id"]}}</code></p>
%   if operation["parameters"]:
<h3>Parameters</h3>
%     fields_table(operation["parameters"], True)
%   end
%   if operation["body"]:
<h3>Request body
%     if operation["body"]["required"]:
<span class="required">required</span>
%     end
</h3>
%     if operation["body"]["description"]:
<p>{{operation["body"]["description"]}}</p>
%     end
%     for media in operation["body"]["contents"]:
<div class="media"><span class="muted">{{media["media_type"]}}</span>
%       type_html(media["type"])
</div>
%       if media["fields"]:
%         fields_table(media["fields"], False)
%       end
%     end
%   end
<h3>Responses</h3>
<table class="responses">
<thead><tr><th class="column-status">Status</th><th class="column-description">Description</th>
<th>Content</th></tr></thead>
<tbody>
%   for response in operation["responses"]:
<tr><td data-label=""><code>{{response["status"]}}</code></td>
<td data-label="">{{response["description"]}}</td>
<td data-label="">
%     for media in response["contents"]:
<div><span class="muted">{{media["media_type"]}}</span>
%       type_html(media["type"])
</div>
%     end
%     if not response["contents"]:
<span class="muted">none</span>
%     end
</td></tr>
%   end
</tbody>
</table>
</section>
% end
% if schemas:
<h2>Schemas</h2>
%   for schema in schemas:
<section class="card" id="schema-{{schema["name"]}}">
<h3><code>{{schema["name"]}}</code></h3>
%     if schema["description"]:
<p class="description">{{schema["description"]}}</p>
%     end
%     if schema["fields"]:
%       fields_table(schema["fields"], False)
%     else:
<p>
%       type_html(schema["type"])
<span class="muted">{{schema["constraints"]}}</span></p>
%     end
</section>
%   end
% end
<h2>The OpenAPI document</h2>
<details><summary>Show the JSON</summary>
<pre>{{document_json}}</pre>
</details>
</main>
</body>
</html>
"""


def _docs_page(app, document):
    """The docs page of ``document`` (app.openapi()): self-contained HTML, no script."""
    components = document.get("components", {}).get("schemas", {})
    operations = [_operation_view(path, method, operation, components)
                  for path, path_item in document["paths"].items()
                  for method, operation in path_item.items()]
    schemas = [_schema_view(name, schema, components) for name, schema in components.items()]
    openapi_url = getattr(app, "openapi_url", None)
    return template(
        _DOCS_TEMPLATE, title=document["info"]["title"], version=document["info"]["version"],
        openapi_version=document["openapi"],
        openapi_url=(app.prefix + openapi_url) if openapi_url else None,
        operations=operations, schemas=schemas,
        document_json=json.dumps(document, indent=2, ensure_ascii=False))


def _operation_view(path, method, operation, components):
    parameters = [dict(_field_view(parameter["name"], parameter["schema"],
                                   parameter.get("required", False), components,
                                   parameter.get("description")), **{"in": parameter["in"]})
                  for parameter in operation.get("parameters", [])]
    body = operation.get("requestBody")
    if body is not None:
        body = {"required": body.get("required", False), "description": body.get("description"),
                "contents": [_media_view(media_type, media.get("schema", {}), components)
                             for media_type, media in body["content"].items()]}
    responses = [{"status": status, "description": response.get("description", ""),
                  "contents": [_media_view(media_type, media.get("schema", {}), components)
                               for media_type, media in response.get("content", {}).items()]}
                 for status, response in operation.get("responses", {}).items()]
    return {"method": method.upper(), "path": path,
            "anchor": "op-" + operation["operationId"], "operation_id": operation["operationId"],
            "summary": operation.get("summary"), "description": operation.get("description"),
            "parameters": parameters, "body": body, "responses": responses}


def _media_view(media_type, schema, components):
    """A body's type, and its fields when it is an object (a $ref's, looked up)."""
    target = _resolved(schema, components)
    fields = [_field_view(name, field, name in target.get("required", ()), components)
              for name, field in target.get("properties", {}).items()]
    return {"media_type": media_type, "type": _type_pieces(schema), "fields": fields}


def _schema_view(name, schema, components):
    fields = [_field_view(field_name, field, field_name in schema.get("required", ()),
                          components)
              for field_name, field in schema.get("properties", {}).items()]
    return {"name": name, "description": schema.get("description"), "fields": fields,
            "type": _type_pieces(schema), "constraints": _constraints_text(schema)}


def _field_view(name, schema, required, components, description=None):
    return {"name": name, "required": required, "type": _type_pieces(schema),
            "constraints": _constraints_text(schema),
            "description": description or schema.get("description") or ""}


def _resolved(schema, components):
    ref = schema.get("$ref", "")
    return components.get(ref[len(_SCHEMA_REF):], {}) if ref.startswith(_SCHEMA_REF) else schema


def _type_pieces(schema):
    """A schema's type as ``[(text, component name or None)]``: ``array of `` + ``Item``."""
    ref = schema.get("$ref")
    if ref is not None:
        name = ref[len(_SCHEMA_REF):]
        return [(name, name)]
    if _is_decimal_schema(schema):
        return [("decimal", None)]
    for combiner in ("anyOf", "oneOf", "allOf"):
        if combiner in schema:
            pieces = []
            for index, choice in enumerate(schema[combiner]):
                if index:
                    pieces.append(("|" if combiner != "allOf" else "&", None))
                pieces.extend(_type_pieces(choice))
            return _merged(pieces)
    kind = schema.get("type")
    if kind == "array":
        if "prefixItems" in schema:
            pieces = [("[", None)]
            for index, item in enumerate(schema["prefixItems"]):
                pieces.extend(([(",", None)] if index else []) + _type_pieces(item))
            return _merged(pieces + [("]", None)])
        items = schema.get("items")
        return _merged([("array of", None), *_type_pieces(items)] if items else [("array", None)])
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return _merged([("object of", None), *_type_pieces(schema["additionalProperties"])])
    if kind is None:
        return [(schema.get("title") or "any", None)]
    text = kind if isinstance(kind, str) else " | ".join(kind)
    if "format" in schema:
        text += f" ({schema['format']})"
    if "title" in schema and "enum" in schema:
        text = f"{schema['title']}: {text}"
    return [(text, None)]


def _is_decimal_schema(schema):
    choices = schema.get("anyOf")
    return bool(choices) and choices[-1].get("pattern") == _DECIMAL_STRING_PATTERN


def _merged(pieces):
    """Adjacent plain texts as one piece, a space between them (the page spaces pieces)."""
    merged = []
    for text, ref in pieces:
        if merged and ref is None and merged[-1][1] is None:
            merged[-1] = (merged[-1][0] + " " + text, None)
        else:
            merged.append((text, ref))
    return merged


_CONSTRAINT_WORDS = (("minimum", "≥ {}"), ("exclusiveMinimum", "> {}"), ("maximum", "≤ {}"),
                     ("exclusiveMaximum", "< {}"), ("formatMinimum", "≥ {}"),
                     ("formatExclusiveMinimum", "> {}"), ("formatMaximum", "≤ {}"),
                     ("formatExclusiveMaximum", "< {}"), ("minLength", "length ≥ {}"),
                     ("maxLength", "length ≤ {}"), ("minItems", "items ≥ {}"),
                     ("maxItems", "items ≤ {}"), ("pattern", "matches {}"))


def _constraints_text(schema):
    """A schema's constraints in words: ``≥ 1, ≤ 100, default 10``."""
    words = []
    for choice in [schema, *schema.get("anyOf", ())]:
        for keyword, form in _CONSTRAINT_WORDS:
            if keyword in choice and not (keyword == "pattern" and _is_decimal_schema(schema)):
                words.append(form.format(_json_text(choice[keyword])
                                         if keyword != "pattern" else choice[keyword]))
        if "const" in choice:
            words.append(f"= {_json_text(choice['const'])}")
        if "enum" in choice:
            words.append("one of " + ", ".join(_json_text(value) for value in choice["enum"]))
        if choice.get("uniqueItems"):
            words.append("unique items")
    if "default" in schema:
        words.append(f"default {_json_text(schema['default'])}")
    return ", ".join(words)


def _json_text(value):
    return json.dumps(value, ensure_ascii=False)


def _openapi_fallback(app, request):
    """The document or the docs page for a GET or HEAD of ``app.openapi_url`` or
    ``app.docs_url`` (under the app's prefix) that no route took; None otherwise. Both are
    made once per change of the routes (cached on the app with the routes' version)."""
    if request.method not in ("GET", "HEAD"):
        return None
    openapi_url = getattr(app, "openapi_url", "/openapi.json")
    docs_url = getattr(app, "docs_url", "/docs")
    wants_document = openapi_url is not None and request.path == app.prefix + openapi_url
    wants_page = docs_url is not None and request.path == app.prefix + docs_url
    if not (wants_document or wants_page):
        return None
    cache = getattr(app, "_openapi_cache", None)
    if cache is None or cache[0] != _routes_version:
        try:
            document = app.openapi() if hasattr(app, "openapi") else _openapi_document(app)
            cache = (_routes_version, json_dumps(document),
                     _docs_page(app, document).encode("utf-8"))
        except Exception:
            log.exception("the OpenAPI document of %r cannot be made", app)
            return error_response(500, "the OpenAPI document cannot be made: see the log")
        app._openapi_cache = cache
    if wants_document:
        return Response(cache[1], 200, content_type="application/json")
    return Response(cache[2], 200, content_type="text/html; charset=utf-8")


# ---- Sessions --------------------------------------------------------------------------------

class Session(dict):
    """The session of one request: a dict that knows whether it was changed."""

    def __init__(self, data=(), session_id=None):
        super().__init__(data)
        self.id = session_id
        self.modified = False
        self.replaced_id = None      # the id rotate() retired, deleted from the store on save

    def rotate(self):
        """Give the session a new id now (keeping its data), e.g. after a login.

        With the default CookieStore there is no id: the signed cookie is simply re-issued.
        """
        if self.id is not None:
            import secrets
            self.replaced_id = self.replaced_id or self.id
            self.id = secrets.token_urlsafe(32)
        self.modified = True


def _marks_modified(name):
    method = getattr(dict, name)

    def changing(self, *args, **kwargs):
        self.modified = True
        return method(self, *args, **kwargs)
    changing.__name__ = name
    return changing


for _name in ("__setitem__", "__delitem__", "clear", "pop", "popitem", "setdefault", "update"):
    setattr(Session, _name, _marks_modified(_name))
del _name


class CookieStore:
    """The default store: the session data itself travels in the signed cookie (max ~4 KB)."""

    in_cookie = True


class MemoryStore:
    """Sessions in this process's memory (lost on restart; one process only)."""

    in_cookie = False

    def __init__(self):
        self._data = {}
        self._lock = threading.Lock()

    def load(self, session_id):
        with self._lock:
            item = self._data.get(session_id)
        if item is None or item[0] < time.time():
            return None
        return json.loads(item[1])

    def save(self, session_id, data, max_age):
        with self._lock:
            self._data[session_id] = (time.time() + max_age, json.dumps(data))

    def delete(self, session_id):
        with self._lock:
            self._data.pop(session_id, None)

    def purge_expired(self):
        now = time.time()
        with self._lock:
            for session_id in [key for key, (expires, _) in self._data.items() if expires < now]:
                del self._data[session_id]


class FileStore:
    """One JSON file per session in ``directory`` (file names are hashes of the ids)."""

    in_cookie = False

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, mode=0o700, exist_ok=True)

    def _path(self, session_id):
        import hashlib
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        return os.path.join(self.directory, digest + ".json")

    def load(self, session_id):
        try:
            with open(self._path(session_id), encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            return None
        if record.get("expires", 0) < time.time():
            self.delete(session_id)
            return None
        return record.get("data")

    def save(self, session_id, data, max_age):
        path = self._path(session_id)
        temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump({"expires": time.time() + max_age, "data": data}, handle)
        os.replace(temporary, path)     # atomic: readers see the old or the new file

    def delete(self, session_id):
        try:
            os.unlink(self._path(session_id))
        except FileNotFoundError:
            pass

    def purge_expired(self):
        now = time.time()
        for entry in os.scandir(self.directory):
            if not entry.name.endswith(".json"):
                continue
            try:
                with open(entry.path, encoding="utf-8") as handle:
                    expired = json.load(handle).get("expires", 0) < now
            except (OSError, ValueError):
                expired = True
            if expired:
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    pass


class SQLiteStore:
    """Sessions in an SQLite database (stdlib ``sqlite3``, WAL mode: several server
    processes can share the file)."""

    in_cookie = False

    def __init__(self, path):
        self.path = os.fspath(path)
        self._local = threading.local()
        self._connection()    # create the table now, not during the first request

    def _connection(self):
        import sqlite3
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("CREATE TABLE IF NOT EXISTS pixie_sessions "
                               "(id TEXT PRIMARY KEY, data TEXT NOT NULL, expires REAL NOT NULL)")
            self._local.connection = connection
        return connection

    def load(self, session_id):
        row = self._connection().execute(
            "SELECT data FROM pixie_sessions WHERE id = ? AND expires >= ?",
            (session_id, time.time())).fetchone()
        return json.loads(row[0]) if row else None

    def save(self, session_id, data, max_age):
        self._connection().execute(
            "INSERT OR REPLACE INTO pixie_sessions (id, data, expires) VALUES (?, ?, ?)",
            (session_id, json.dumps(data), time.time() + max_age))

    def delete(self, session_id):
        self._connection().execute("DELETE FROM pixie_sessions WHERE id = ?", (session_id,))

    def purge_expired(self):
        self._connection().execute("DELETE FROM pixie_sessions WHERE expires < ?", (time.time(),))


def _add_vary(response, field):
    current = response.headers.get("Vary", "")
    if field.lower() not in [item.strip().lower() for item in current.split(",")]:
        response.headers["Vary"] = f"{current}, {field}" if current else field


class Sessions:
    """Component: ``app.install(Sessions(secret, store=SQLiteStore("s.db")))`` gives every
    request a ``request.session`` dict, saved when modified.

    The cookie is signed (HMAC-SHA256); with a server-side store it holds only a random id
    (``secrets.token_urlsafe(32)``). Responses of requests that used the session get
    ``Vary: Cookie``. A store is any object with ``load(id)``, ``save(id, data, max_age)``,
    ``delete(id)`` and ``purge_expired()``.
    """

    name = "sessions"

    def __init__(self, secret, store=None, cookie_name="pixie_session", max_age=14 * 24 * 3600,
                 secure=False, samesite="Lax", path="/", httponly=True):
        if not secret:
            raise ValueError("Sessions needs a secret key (keep it out of version control)")
        self.secret = secret
        self.store = store if store is not None else CookieStore()
        self.cookie_name = cookie_name
        self.max_age = max_age
        self.secure = secure
        self.samesite = samesite
        self.path = path
        self.httponly = httponly
        self._next_purge = 0.0

    #: Expired sessions are purged from a server-side store at most this often (seconds).
    purge_interval = 3600.0

    def startup(self, app):
        self._purge()

    def _purge(self):
        self._next_purge = time.monotonic() + self.purge_interval
        if not self.store.in_cookie:
            try:
                self.store.purge_expired()
            except Exception:
                log.exception("purging expired sessions failed")

    def _load(self, request):
        value = request.get_cookie(self.cookie_name, secret=self.secret)
        if self.store.in_cookie:
            return Session(value if isinstance(value, dict) else {})
        if isinstance(value, str):
            data = self.store.load(value)
            if isinstance(data, dict):
                return Session(data, value)
        return Session()

    def _save(self, session, response):
        cookie_value = dict(session)
        if not self.store.in_cookie:
            if session.replaced_id is not None:
                self.store.delete(session.replaced_id)
                session.replaced_id = None
            if session.id is None:
                import secrets
                session.id = secrets.token_urlsafe(32)
            self.store.save(session.id, dict(session), self.max_age)
            if time.monotonic() >= self._next_purge:
                self._purge()
            cookie_value = session.id
        response.set_cookie(self.cookie_name, cookie_value, max_age=self.max_age,
                            path=self.path, secure=self.secure, httponly=self.httponly,
                            samesite=self.samesite, secret=self.secret)

    async def middleware(self, request, call_next):
        request._session_loader = self._load
        response = await call_next(request)
        session = request._session
        if isinstance(session, Session):
            _add_vary(response, "Cookie")
            if session.modified:
                self._save(session, response)
        return response


# ---- Process pool ----------------------------------------------------------------------------

class ProcessType(Enum):
    """Where the current code runs."""

    main = "main"    #: the server process (event loop or thread pool)
    pool = "pool"    #: a worker process of the pool


class _ProcessEnvironment:
    """``proc_env.proc_type`` tells a handler whether it runs in the server or a pool worker."""

    proc_type = ProcessType.main


proc_env = _ProcessEnvironment()


def _pool_initializer(niceness=0):
    proc_env.proc_type = ProcessType.pool
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the server's to handle
    if niceness:
        try:
            os.nice(niceness)   # lower priority: the event loop gets the CPU first
        except (OSError, AttributeError):           # not permitted, or not on this OS
            pass


def _pool_warmup():
    return os.getpid()


def _pool_apply(function, args, kwargs):
    """What ``in_pool`` runs in a worker."""
    return function(*args, **kwargs)


# The pool's framing, on a worker's pipe and on a stream back from a worker: an 8-byte
# big-endian length, then that many bytes (a pickle on the pipe, a body chunk on a stream,
# whose first frame is the pickled (stream id, status, header items) and whose end is an
# empty frame).
_POOL_FRAME = struct.Struct("!Q")
_STREAM_END = 0


def _frame(payload):
    return _POOL_FRAME.pack(len(payload)) + payload


def _recv_exactly(sock, size):
    """``size`` bytes from a blocking socket; EOFError if it closes first."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    received = 0
    while received < size:
        count = sock.recv_into(view[received:])
        if not count:
            raise EOFError("the pipe closed")
        received += count
    return bytes(buffer)


def _recv_frame(sock):
    (size,) = _POOL_FRAME.unpack(_recv_exactly(sock, _POOL_FRAME.size))
    return _recv_exactly(sock, size)


def _stream_to_server(address, stream_id, response):
    """Send a streaming response body from a pool worker back to the server, chunk by chunk.

    The server closes the socket when its client goes away; the next send then fails and
    the generator is closed at its ``yield`` (so its ``finally`` blocks run).
    """
    family = socket.AF_UNIX
    body = response.body
    iterator = _iter_file(body) if _is_binary_file(body) else iter(body)
    import pickle
    try:
        with socket.socket(family, socket.SOCK_STREAM) as channel:
            channel.connect(address)
            head = pickle.dumps((stream_id, response.status, response.headers.items()))
            channel.sendall(_frame(head))
            try:
                for chunk in iterator:
                    if isinstance(chunk, str):
                        chunk = chunk.encode("utf-8")
                    if chunk:
                        channel.sendall(_frame(bytes(chunk)))
                channel.sendall(_POOL_FRAME.pack(_STREAM_END))
            except OSError:
                pass  # the client went away: stop producing
    finally:
        close = getattr(iterator, "close", None) or getattr(body, "close", None)
        if close is not None:
            close()


def _iter_file(file):
    while True:
        chunk = file.read(_FILE_CHUNK)
        if not chunk:
            return
        yield chunk


_STREAMED = "pixie_web:streamed"


def _pool_call(handler, snapshot, path_params, stream_address, stream_id, server_pid=None):
    """Run a pool handler in a worker process and return a picklable result.

    ``server_pid``: the server's process, given for an external executor, whose workers are
    pool workers too (proc_env says so) unless they are threads of the server itself."""
    if server_pid is not None and os.getpid() != server_pid:
        proc_env.proc_type = ProcessType.pool
    request = Request._from_snapshot(snapshot)
    request.path_params = path_params
    try:
        response = to_response(handler(request, **path_params))
    except HTTPError as error:
        response = http_error_response(error)
    body = response.body
    if body is None or isinstance(body, (bytes, bytearray, str)):
        return response
    if stream_address is None:   # an external executor: no channel back, collect the body
        chunks = _iter_file(body) if _is_binary_file(body) else body
        response.body = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)
        return response
    _stream_to_server(stream_address, stream_id, response)
    return _STREAMED


class _PoolStreamChannel:
    """The server's end of pool streams: a Unix socket that workers connect back to."""

    def __init__(self):
        self.address = None
        self._server = None
        self._waiters = {}     # stream id -> a future woken with "stream" when it opens
        self._opened = {}      # stream id -> (reader, writer, status, header items)
        self._next_id = 0

    async def start(self):
        import secrets
        if sys.platform.startswith("linux"):
            self.address = "\0pixie-web-" + secrets.token_hex(16)   # abstract: nothing on disk
        else:
            import tempfile
            self.address = os.path.join(tempfile.mkdtemp(prefix="pixie-web-"), "streams")
        self._server = await asyncio.start_unix_server(self._accept, self.address)

    def register(self, waiter):
        """A new stream id; ``waiter`` is woken with "stream" if a worker opens that stream."""
        self._next_id += 1
        self._waiters[self._next_id] = waiter
        return self._next_id

    async def opened(self, stream_id):
        """``(reader, writer, status, header items)`` of a stream a worker has opened."""
        if stream_id not in self._opened:    # the call's result came in before the stream
            waiter = asyncio.get_running_loop().create_future()
            self._waiters[stream_id] = waiter
            await waiter
        return self._opened.pop(stream_id)

    def forget(self, stream_id):
        self._waiters.pop(stream_id, None)
        stream = self._opened.pop(stream_id, None)
        if stream is not None:
            stream[1].close()

    async def _accept(self, reader, writer):
        import pickle
        try:
            (size,) = _POOL_FRAME.unpack(await reader.readexactly(_POOL_FRAME.size))
            stream_id, status, header_items = pickle.loads(await reader.readexactly(size))
        except (asyncio.IncompleteReadError, pickle.UnpicklingError, ValueError, OSError):
            writer.close()
            return
        waiter = self._waiters.get(stream_id)
        if waiter is None or stream_id in self._opened:
            writer.close()
            return
        self._opened[stream_id] = (reader, writer, status, header_items)
        if not waiter.done():
            waiter.set_result("stream")

    async def close(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _read_pool_stream(reader, writer):
    """Yield the chunks a pool worker sends; closing this generator hangs up on the worker."""
    try:
        while True:
            (size,) = _POOL_FRAME.unpack(await reader.readexactly(_POOL_FRAME.size))
            if size == _STREAM_END:
                return
            yield await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise ConnectionError("the pool worker stopped in the middle of a stream") from None
    finally:
        writer.close()


class _PoolTimeout(Exception):
    pass


class _WorkerStopped(Exception):
    """The worker process running a call died (crash, ``os._exit``, killed)."""


class _RemoteTraceback(Exception):
    """Carries a pool worker's traceback text as the ``__cause__`` of the error it raised."""

    def __str__(self):
        return self.args[0]


def _pool_reply(function, arguments):
    """Run one call in a worker; the pickled ``(True, result)`` or ``(False, error, text)``."""
    import pickle
    try:
        return pickle.dumps((True, function(*arguments)), pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        text = "".join(traceback.format_exception(error))
        try:
            return pickle.dumps((False, error, text), pickle.HIGHEST_PROTOCOL)
        except Exception:     # an error that cannot be pickled: send its text instead
            return pickle.dumps((False, RuntimeError(repr(error)), text), pickle.HIGHEST_PROTOCOL)


def _pool_worker_main(connection, niceness, server_end=None):
    """A worker process: read a framed, pickled ``(function, arguments)``, reply in a frame,
    repeat until the server closes its end of the pipe. ``connection`` (a
    multiprocessing Connection) only carries the pipe's descriptor under every start method;
    ``server_end`` is the server's end, inherited under fork, closed here so that the worker
    sees the server go."""
    if server_end is not None:
        os.close(server_end)
    pipe = socket.socket(fileno=os.dup(connection.fileno()))
    connection.close()
    _pool_initializer(niceness)
    import pickle
    with pipe:
        while True:
            try:
                message = _recv_frame(pipe)
            except (EOFError, OSError):
                return
            try:
                function, arguments = pickle.loads(message)
            except Exception as error:
                reply = _pool_reply(_raise, (error,))
            else:
                reply = _pool_reply(function, arguments)
            del message
            try:
                pipe.sendall(_frame(reply))
            except OSError:
                return


def _raise(error):
    raise error


class _PoolCall:
    """One call on its way to, or running in, a worker."""

    __slots__ = ("message", "waiter", "reply", "worker_pid")

    def __init__(self, function, arguments, waiter):
        import pickle
        self.message = pickle.dumps((function, arguments), pickle.HIGHEST_PROTOCOL)
        self.waiter = waiter    # woken with "result" (then .reply is set) or "stream"
        self.reply = None
        self.worker_pid = None  # the worker that took it (slow-handler reports)


class _PoolWorker:
    """The server's end of one worker process's pipe. A worker runs one call at a time."""

    def __init__(self, pool, process):
        self.pool = pool
        self.process = process
        self.transport = None
        self.call = None
        self._buffer = bytearray()

    def connection_made(self, transport):
        self.transport = transport

    def run(self, call):
        self.call = call
        call.worker_pid = self.process.pid
        self.transport.write(_frame(call.message))
        call.message = None

    def data_received(self, data):
        buffer = self._buffer
        buffer += data
        header = _POOL_FRAME.size
        while len(buffer) >= header:
            (size,) = _POOL_FRAME.unpack_from(buffer)
            if len(buffer) < header + size:
                return
            reply = bytes(buffer[header:header + size])
            del buffer[:header + size]
            call, self.call = self.call, None
            self.pool._replied(self, call, reply)

    def connection_lost(self, exc):
        self.pool._lost(self)

    def eof_received(self):
        return None     # the transport closes; connection_lost follows

    def pause_writing(self):
        pass            # a call is one message; the worker reads it whole

    def resume_writing(self):
        pass


def _pool_start_method(method=None):
    """The multiprocessing start method of the pool: ``method``, else forkserver where it
    exists (no fork of a threaded server), else spawn."""
    if method is not None:
        return method
    import multiprocessing
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _unguarded_main_line():
    """``(path, line)`` when the main script is running a top-level line outside its
    ``if __name__ == "__main__":`` block right now, else None.

    Pool workers started by spawn or forkserver import the main script again, so a pool
    started from such a line would be started again, half-way, in every worker."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_globals is getattr(main, "__dict__", None)
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None or path is None:
        return None
    import ast
    try:
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read())
    except (OSError, SyntaxError, ValueError):
        return None
    line = frame.f_lineno
    for node in tree.body:
        if (isinstance(node, ast.If) and node.lineno <= line <= node.end_lineno
                and ast.unparse(node.test).replace("'", '"') in _MAIN_GUARDS):
            return None
    return path, line


_MAIN_GUARDS = ('__name__ == "__main__"', '"__main__" == __name__')


class _ProcessPool:
    """The worker processes of ``RouteType.pool`` routes, each reached over its own pipe.

    Calls go straight from the event loop to an idle worker and come back the same way
    (no executor threads in between); calls wait in a queue while every worker is busy.
    A worker whose call times out is killed and replaced, so a hung handler never clogs
    the pool; a worker that dies fails only its own call and is replaced too.
    """

    def __init__(self, workers, start_method=None, niceness=0):
        self.workers = workers
        self.niceness = niceness
        self.start_method = start_method
        self.channel = None
        self._context = None
        self._idle = []
        self._queue = deque()
        self.restarts = 0           # workers replaced after dying or timing out (metrics)
        self._all = set()
        self._starting = set()
        self._closing = False

    async def start(self):
        """Start the workers now (not at the first request) and open the stream channel."""
        import multiprocessing
        self._context = multiprocessing.get_context(_pool_start_method(self.start_method))
        self.channel = _PoolStreamChannel()
        await self.channel.start()
        await asyncio.gather(*(self._start_worker() for _ in range(self.workers)))
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(self._run(_PoolCall(_pool_warmup, (), loop.create_future()))
                               for _ in range(self.workers)))

    async def _start_worker(self):
        """Start one worker process and connect its pipe to the loop."""
        ours, theirs = socket.socketpair()
        import multiprocessing.connection
        their_end = multiprocessing.connection.Connection(theirs.detach())
        inherited = ours.fileno() if self._context.get_start_method() == "fork" else None
        process = self._context.Process(target=_pool_worker_main, daemon=True,
                                        args=(their_end, self.niceness, inherited),
                                        name="pixie-web-pool")
        try:
            process.start()
        finally:
            their_end.close()
        loop = asyncio.get_running_loop()
        _, worker = await loop.create_connection(lambda: _PoolWorker(self, process), sock=ours)
        self._all.add(worker)
        if self._closing:
            worker.transport.close()
        else:
            self._ready(worker)

    def _replace(self):
        task = asyncio.get_running_loop().create_task(self._start_worker())
        self._starting.add(task)
        task.add_done_callback(self._started)

    def _started(self, task):
        self._starting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not start a pool worker", exc_info=task.exception())

    def _ready(self, worker):
        """Give an idle worker the next waiting call, or let it wait for one."""
        queue = self._queue
        while queue:
            call = queue.popleft()
            if not call.waiter.done():     # its request timed out or went away meanwhile
                worker.run(call)
                return
        self._idle.append(worker)

    def _replied(self, worker, call, reply):
        if call is not None:
            if not call.waiter.done():
                call.reply = reply
                call.waiter.set_result("result")
            else:
                _log_late_error(reply)   # a stream's end, or the end of an abandoned call
        self._ready(worker)

    def _lost(self, worker):
        """A worker's pipe closed: it died, or it was killed, or the pool is closing."""
        self._all.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        call, worker.call = worker.call, None
        if call is not None and not call.waiter.done():
            call.waiter.set_exception(_WorkerStopped())
        if not self._closing:
            _stop_process(worker.process)
            self.restarts += 1
            self._replace()

    @property
    def queue_depth(self):
        """Calls waiting for a free worker (metrics)."""
        return len(self._queue)

    async def _run(self, call, timeout=None):
        """Run a call in a worker; its unpickled result (a worker's exception is raised here),
        or _STREAMED once the worker has started streaming a body back."""
        import pickle
        if self._idle:
            self._idle.pop().run(call)
        else:
            self._queue.append(call)
        try:
            async with asyncio.timeout(timeout):
                if await call.waiter == "stream":
                    return _STREAMED         # the worker is still sending it
        except TimeoutError:
            self._abandon(call)
            raise _PoolTimeout() from None
        finally:
            if not call.waiter.done():   # cancelled: a queued call is skipped by _ready
                call.waiter.cancel()
        reply = pickle.loads(call.reply)
        if reply[0]:
            return reply[1]
        error = reply[1]
        error.__cause__ = _RemoteTraceback(reply[2])
        raise error

    def _abandon(self, call):
        """A call timed out: if a worker is running it, kill that worker (it is replaced)."""
        for worker in self._all:
            if worker.call is call:
                worker.call = None
                worker.transport.close()     # then _lost kills the process
                return

    async def apply(self, function, args, kwargs, timeout):
        """``function(*args, **kwargs)`` in a worker (in_pool)."""
        waiter = asyncio.get_running_loop().create_future()
        return await self._run(_PoolCall(_pool_apply, (function, args, kwargs), waiter),
                               timeout)

    async def call(self, handler, request, path_params, timeout):
        """Run ``handler`` in a worker; return a Response (streams come back chunk by chunk)."""
        channel = self.channel
        waiter = asyncio.get_running_loop().create_future()
        stream_id = channel.register(waiter)
        try:
            arguments = (handler, request._snapshot(), path_params, channel.address, stream_id)
            call = _PoolCall(_pool_call, arguments, waiter)
            try:
                result = await self._run(call, timeout)
            finally:
                request._worker_pid = call.worker_pid
            if result != _STREAMED:
                return result
            reader, writer, status, header_items = await channel.opened(stream_id)
            return StreamResponse(_read_pool_stream(reader, writer), status,
                                  headers=header_items, content_type=None)
        finally:
            channel.forget(stream_id)

    def check_handlers(self, routes):
        """Refuse, at start-up, pool handlers that a worker could not import by name."""
        for route in routes:
            handler = route.handler
            module = sys.modules.get(handler.__module__)
            if module is None or getattr(module, handler.__qualname__, None) is not handler:
                raise TypeError(
                    f"pool route {route.path!r}: {handler.__module__}.{handler.__qualname__} "
                    "does not name this handler, so worker processes cannot import it: define "
                    "pool handlers as plain module-level functions (another decorator may have "
                    "replaced it)")
            import pickle
            try:
                pickle.dumps(handler)
            except Exception as error:
                raise TypeError(f"pool route {route.path!r}: the handler cannot be pickled "
                                f"for the worker processes: {error}") from None

    async def close(self):
        self._closing = True
        for task in list(self._starting):
            task.cancel()
        if self.channel is not None:
            await self.channel.close()
        for worker in list(self._all):
            _kill(worker.process)
            worker.transport.close()
        for worker in list(self._all):
            worker.process.join(1)     # shutting down: waiting here is fine


def _kill(process):
    if process.exitcode is None:
        try:
            process.kill()
        except (OSError, AttributeError, ValueError):
            pass


def _stop_process(process):
    """Kill a worker process and reap it once it has gone (without blocking the loop)."""
    _kill(process)
    try:
        loop = asyncio.get_running_loop()
        loop.add_reader(process.sentinel, _reap, loop, process)
    except (RuntimeError, NotImplementedError, ValueError, OSError):
        pass   # no loop, or a loop that cannot watch it: multiprocessing reaps it later


_REAP_INTERVAL = 0.02       # seconds between looks at a worker whose pipe has closed
_REAP_TRIES = 100


def _reap(loop, process, tries=_REAP_TRIES):
    loop.remove_reader(process.sentinel)
    if process.exitcode is None and tries:    # its pipe closed a moment before it ended
        loop.call_later(_REAP_INTERVAL, _reap, loop, process, tries - 1)


def _log_late_error(reply):
    import pickle
    outcome = pickle.loads(reply)
    if not outcome[0]:
        log.error("a pool call ended with an error after its response had started or been "
                  "given up:\n%s", outcome[2])


class _ExecutorPool:
    """Pool routes on an executor the application supplies (``run(executor=…)``): any
    ``concurrent.futures.Executor``. Streamed bodies are collected in the worker."""

    workers = None
    queue_depth = 0      # the executor's own queue is not visible
    restarts = 0

    def __init__(self, executor):
        self.executor = executor

    async def apply(self, function, args, kwargs, timeout):
        return await self._submit(timeout, _pool_apply, function, args, kwargs)

    async def call(self, handler, request, path_params, timeout):
        return await self._submit(timeout, _pool_call, handler, request._snapshot(),
                                  path_params, None, None, os.getpid())

    async def _submit(self, timeout, function, *args):
        try:
            future = self.executor.submit(function, *args)
        except concurrent.futures.BrokenExecutor:
            # a process executor that lost a worker stays broken (ProcessPoolExecutor, loky)
            log.error("the executor given to pixie_web is broken (it lost a worker): pool "
                      "routes answer 503 until the application replaces it")
            raise _WorkerStopped() from None
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.wrap_future(future)
        except TimeoutError:
            future.cancel()
            raise _PoolTimeout() from None
        except concurrent.futures.BrokenExecutor:
            raise _WorkerStopped() from None

    async def close(self):
        pass   # the application owns its executor


# ---- HTTP/1.1 connection (sans-IO) -----------------------------------------------------------
# Bytes in, events out, no sockets and no asyncio: the request-head parser (request line,
# header section, framing rules, target), the events, the read state, the receive buffer,
# the body readers, HTTP11Connection, and serialize_head. The grammar is in "HTTP grammar".

_CANONICAL_REQUEST_LINE = b"GET / HTTP/1.1\r\n"   # put before a header block for llhttp
_MAX_CHUNK_LINE = 4096
_FORBIDDEN_TRAILERS = frozenset({"content-length", "transfer-encoding", "host"})


class _HeaderCollector:
    """llhttp callbacks: collect header pairs, with the same token check as the pure path."""

    __slots__ = ("pairs",)

    def __init__(self):
        self.pairs = []

    def on_header(self, name, value):
        if not _TOKEN_RE.fullmatch(name):
            raise ProtocolError(400, "invalid header line")
        self.pairs.append((name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")))


def _parse_header_lines_httptools(block):
    """The same as the pure parser, with llhttp splitting the lines.

    llhttp only sees the header block (behind a fixed request line); the token check is
    repeated on its output, and anything llhttp refuses is re-parsed by the pure parser
    for the error, so both paths accept and refuse exactly the same inputs.
    """
    if not block:
        return _HeaderSection(pairs=())
    if _HEAD_CTL_RE.search(block) or block.count(b"\n") != block.count(b"\r\n") \
            or block.count(b"\r") != block.count(b"\n"):
        _raise_head_error(block)
    if b" \r\n" in block or b"\t\r\n" in block or block.endswith((b" ", b"\t")):
        # Trailing whitespace is legal OWS that llhttp refuses in some fields; values are
        # stripped anyway, so it is stripped first.
        block = b"\r\n".join(line.rstrip(b" \t") for line in block.split(b"\r\n"))
    collector = _HeaderCollector()
    parser = httptools.HttpRequestParser(collector)
    try:
        parser.feed_data(_CANONICAL_REQUEST_LINE + block + b"\r\n\r\n")
    except httptools.HttpParserUpgrade:
        pass
    except httptools.HttpParserError as error:
        if isinstance(error.__context__, ProtocolError):
            raise error.__context__ from None
        raise _RefusedByLLHTTP() from None
    if len(collector.pairs) != block.count(b"\r\n") + 1:
        raise _RefusedByLLHTTP()   # llhttp merged or skipped a line: refuse, as the pure path
    return _HeaderSection(pairs=tuple(collector.pairs))


class _RefusedByLLHTTP(Exception):
    """llhttp refused a header section; the pure parser then names the precise reason."""


# The server's header parser is the pure one in every build: it validates a section with one
# C regex and splits pairs only when read, while llhttp calls back into Python once per
# header (nearly twice the time per request on browser-like headers that change per request;
# see docs/performance.md). The httptools parser stays as the independent second opinion the
# differential tests compare it with.
_parse_header_lines = _parse_header_lines_pure


def _raise_request_line_error(request_line):
    if _HEAD_CTL_RE.search(request_line) or b"\r" in request_line or b"\n" in request_line:
        _raise_head_error(request_line)
    raise ProtocolError(400, "malformed request line")


def parse_request_line(request_line, max_request_line):
    """``(method, target, major, minor)`` of a request line; ProtocolError 414/400/505."""
    if len(request_line) > max_request_line:
        raise ProtocolError(414)
    match = _REQUEST_LINE_RE.fullmatch(request_line)
    if match is None:
        _raise_request_line_error(request_line)
    method, target, major, minor = match.groups()
    if (major, minor) not in ((b"1", b"1"), (b"1", b"0")):
        raise ProtocolError(505)
    return method, target, major, minor


_HEAD_CACHE_SIZE = 256          # distinct header sections remembered per app
_HEAD_CACHE_MAX_BLOCK = 4096    # bytes: larger sections are parsed every time


def parse_request_head(head, max_request_line, max_header_count, parse_lines=None,
                       max_header_bytes=None, cache=None):
    """Parse and validate a request head (bytes before the blank line); raise ProtocolError.

    ``cache``: see parse_header_section.
    """
    # The request-line regex and the header parsers admit no control byte and no lone CR
    # or LF, so no separate scan of the head is needed.
    request_line = head.partition(b"\r\n")[0]
    method, target, major, minor = parse_request_line(request_line, max_request_line)
    result = RequestHead()
    result.method = method.decode("ascii")
    result.raw_target = target
    result.http_version = "1.1" if minor == b"1" else "1.0"
    result.section = parse_header_section(head, len(request_line), max_header_count,
                                          parse_lines, max_header_bytes, cache)
    return result


def parse_header_section(head, line_end, max_header_count, parse_lines=None,
                         max_header_bytes=None, cache=None):
    """The _HeaderSection of a request head whose valid request line ends at ``line_end``
    (the byte before it is the minor version digit); raise ProtocolError.

    Shared by the pure and the httptools paths: only the splitting of header lines differs.
    ``cache`` (a dict) remembers accepted sections by their bytes and the version digit
    (the framing rules depend on the version): a client sends the same section again and
    again on a connection. Refused sections are not kept.
    """
    if cache is not None:
        key = head[line_end - 1:]       # one bytes object: its hash is computed once
        section = cache.get(key)
        if section is not None:
            return section
    block = head[line_end + 2:]
    if max_header_bytes is not None and len(block) + 2 > max_header_bytes:
        raise ProtocolError(431, "header section too large")
    if block and block.count(b"\r\n") + 1 > max_header_count:
        raise ProtocolError(431, "too many header fields")
    http_version = "1.1" if head[line_end - 1] == _DIGIT_ONE else "1.0"
    try:
        section = (parse_lines or _parse_header_lines)(block)
    except _RefusedByLLHTTP:
        # Same error message as the pure path; if only llhttp objects, the stricter wins.
        _check_framing(_parse_header_lines_pure(block), http_version)
        raise ProtocolError(400, "invalid header section") from None
    _check_framing(section, http_version)
    if cache is not None and len(block) <= _HEAD_CACHE_MAX_BLOCK:
        if len(cache) >= _HEAD_CACHE_SIZE:
            cache.clear()           # many distinct sections (an attack, or a busy server)
        cache[key] = section
    return section


_DIGIT_ONE = ord("1")
_VALID_HOSTS = set()


def _check_framing(head, http_version):
    """The framing rules: one Content-Length or exactly ``chunked`` (never both), one Host
    (required in HTTP/1.1), at most one Content-Type, Connection and Expect. ``head`` (a
    _HeaderSection) gets what they found."""
    content_lengths, codings, hosts, connection = [], [], [], []
    expect = ""
    content_types = 0
    for name, value in head.framing_fields():
        name = name.lower()
        if name == "host":
            hosts.append(value.strip(" \t"))
        elif name[0] not in "cte":       # none of the framing fields
            continue
        elif name == "content-length":
            content_lengths.append(value.strip(" \t"))
        elif name == "transfer-encoding":
            codings.append(value)
        elif name == "connection":
            connection.append(value.lower())
        elif name == "expect":
            expect = value.strip(" \t").lower()
        elif name == "content-type":
            content_types += 1
    if content_types > 1:
        raise ProtocolError(400, "several Content-Type fields")
    head.content_length = None
    head.chunked = False
    if codings:
        if http_version == "1.0":
            raise ProtocolError(400, "Transfer-Encoding is not allowed in HTTP/1.0")
        if content_lengths:
            raise ProtocolError(400, "both Content-Length and Transfer-Encoding")
        items = [item.strip(" \t").lower() for value in codings for item in value.split(",")]
        if items == ["chunked"]:
            head.chunked = True
        elif all(_STR_TOKEN_RE.fullmatch(item) for item in items):
            raise ProtocolError(501, "only the chunked transfer coding is supported")
        else:
            raise ProtocolError(400, "malformed Transfer-Encoding")
    elif content_lengths:
        if len(content_lengths) > 1:
            raise ProtocolError(400, "several Content-Length fields")
        if not _DIGITS_RE.fullmatch(content_lengths[0].encode("latin-1")):
            raise ProtocolError(400, "invalid Content-Length")
        head.content_length = int(content_lengths[0])
    if len(hosts) > 1:
        raise ProtocolError(400, "several Host fields")
    if not hosts and http_version == "1.1":
        raise ProtocolError(400, "missing Host header")
    head.host = host = hosts[0] if hosts else ""
    if host not in _VALID_HOSTS:
        if not _HOST_RE.fullmatch(host):
            raise ProtocolError(400, "invalid Host header")
        if len(_VALID_HOSTS) < 256:        # a server sees few distinct hosts: remember them
            _VALID_HOSTS.add(host)
    if connection:
        tokens = {token.strip(" \t") for value in connection for token in value.split(",")}
        head.keep_alive = "close" not in tokens and (
            http_version == "1.1" or "keep-alive" in tokens)
        head.upgrade = "upgrade" in tokens
    else:
        head.keep_alive = http_version == "1.1"
        head.upgrade = False
    if expect and expect != "100-continue":
        raise ProtocolError(417)
    head.expect_continue = bool(expect)


_ENCODED_SLASH_RE = re.compile("%2f", re.IGNORECASE)


def split_target(method, raw_target):
    """``(raw_path, routing_path, query_string, host_from_target)`` of a request target.

    The routing path is percent-decoded, except that each encoded slash is _ENCODED_SLASH.
    """
    if raw_target[:1] == b"/" and b"%" not in raw_target and b"#" not in raw_target:
        target = raw_target.decode("ascii")       # the common case: nothing to decode
        path, _, query = target.partition("?")
        return path, path, query, None
    host = None
    if raw_target.startswith(b"/"):
        raw_path, _, query = raw_target.partition(b"?")
    elif raw_target == b"*" and method == "OPTIONS":
        return "*", "*", "", None
    else:
        absolute = _ABSOLUTE_TARGET_RE.fullmatch(raw_target)
        if absolute is None:
            if method == "CONNECT":      # host:port, a tunnel request: this is no proxy
                raise ProtocolError(501, "CONNECT is not supported")
            raise ProtocolError(400, "invalid request target")
        host = absolute.group(1).decode("ascii")
        if not _HOST_RE.fullmatch(host):
            raise ProtocolError(400, "invalid request target")
        raw_path, _, query = (absolute.group(2) or b"/").partition(b"?")
        if not raw_path.startswith(b"/"):
            raw_path = b"/" + raw_path
    if b"#" in raw_path or b"#" in query:
        raise ProtocolError(400, "fragment in the request target")
    raw_path_text = raw_path.decode("ascii")
    if b"%" in raw_path:
        # An encoded slash ("%2F") stays apart from the real ones, as _ENCODED_SLASH (a NUL,
        # which a decoded path can never hold), so a one-segment wildcard can carry it.
        try:
            pieces = [unquote_to_bytes(piece).decode("utf-8")
                      for piece in _ENCODED_SLASH_RE.split(raw_path_text)]
        except UnicodeDecodeError:
            raise ProtocolError(400, "the path is not valid UTF-8") from None
        if any(_CTL_STR_RE.search(piece) for piece in pieces):
            raise ProtocolError(400, "control character in the path")
        path = _ENCODED_SLASH.join(pieces)
    else:
        path = raw_path_text
    return raw_path_text, path, query.decode("ascii"), host


# -- events: what HTTP11Connection.next_events() returns --

class RequestHead:
    """Event: a parsed, validated request head (the named structure every front end reads).

    ``method``, ``raw_target`` (bytes), ``http_version`` ("1.1"/"1.0") and ``section`` (the
    _HeaderSection, whose framing fields the properties below expose) come from the parser;
    ``raw_path``, ``path`` (decoded, for routing: an encoded slash is _ENCODED_SLASH),
    ``query_string`` and ``target_host`` (from an absolute-form target, else None) from the
    target. A head announcing a body is followed by Data events and END_OF_MESSAGE, unless
    the front end calls ``skip_body()``; any other head by END_OF_MESSAGE at once."""

    __slots__ = ("method", "raw_target", "http_version", "section", "raw_path", "path",
                 "query_string", "target_host")

    header_pairs = property(lambda self: self.section)
    content_length = property(lambda self: self.section.content_length)
    chunked = property(lambda self: self.section.chunked)
    keep_alive = property(lambda self: self.section.keep_alive)
    expect_continue = property(lambda self: self.section.expect_continue)
    host = property(lambda self: self.section.host)


class Data:
    """Event: a piece of a request body, as bytes."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


class EndOfMessage:
    """Event: the request (head and body, trailers checked) is complete."""

    __slots__ = ()

    def __repr__(self):
        return "END_OF_MESSAGE"


END_OF_MESSAGE = EndOfMessage()
# The fourth event is a ProtocolError: the status to answer with, after which the connection
# reads nothing more.


class ReadState(Enum):
    """What an HTTP11Connection reads next. The legal transitions (_TRANSITIONS):

    AWAIT_HEAD -> AWAIT_HEAD   a head without a body: RequestHead, END_OF_MESSAGE
    AWAIT_HEAD -> BODY         a head announcing a body: RequestHead (the batch ends there)
    BODY       -> AWAIT_HEAD   the body is complete: Data..., END_OF_MESSAGE
    AWAIT_HEAD, BODY -> CLOSED a ProtocolError event, or the front end stops reading
                               (skip_body(), close()); CLOSED is final
    """

    AWAIT_HEAD = "waiting for a request head"
    BODY = "reading a request body"
    CLOSED = "reading nothing more"


# The members as plain globals, for the per-request paths (as the route types).
_AWAIT_HEAD, _BODY, _CLOSED = ReadState.AWAIT_HEAD, ReadState.BODY, ReadState.CLOSED
_TRANSITIONS = {
    _AWAIT_HEAD: frozenset({_AWAIT_HEAD, _BODY, _CLOSED}),
    _BODY: frozenset({_AWAIT_HEAD, _CLOSED}),
    _CLOSED: frozenset({_CLOSED}),
}


class ReceiveBuffer(bytearray):
    """The bytes received and not yet consumed; all slicing of received data happens here.

    A bytearray: deleting what was consumed from its front costs no copy in CPython."""

    __slots__ = ()

    def take_head(self):
        """The bytes of a whole head (without its final empty line), consumed; else None."""
        return self._take_through(_HEAD_END)

    def take_line(self):
        """A whole line (without its CRLF), consumed; else None."""
        return self._take_through(CRLF)

    def _take_through(self, separator):
        end = self.find(separator)
        if end < 0:
            return None
        data = bytes(self[:end])
        del self[:end + len(separator)]
        return data

    def take(self, size):
        """Up to ``size`` bytes, consumed."""
        data = bytes(self[:size])
        del self[:size]
        return data

    def take_crlf(self):
        """Consume a CRLF: True; False if more bytes are needed; ProtocolError if not one."""
        if self[:2] == CRLF:
            del self[:2]
            return True
        if len(self) >= 2 or self[:1] not in (b"", b"\r"):
            raise ProtocolError(400, "chunk data not followed by CRLF")
        return False


class ContentLengthReader:
    """Reads a body of a known size (RFC 9112 6.2)."""

    __slots__ = ("remaining",)

    def __init__(self, size):
        self.remaining = size

    def read(self, buffer, events):
        """Append Data events for what ``buffer`` holds; True once the body is complete."""
        if self.remaining and buffer:
            data = buffer.take(self.remaining)
            self.remaining -= len(data)
            events.append(Data(data))
        return not self.remaining


class ChunkedReader:
    """Reads a chunked body (RFC 9112 7.1): size lines, chunk data each followed by CRLF,
    trailer lines up to the empty line. Limits: ``max_body_size`` (413), and the trailers
    count against ``max_header_bytes`` and ``max_header_count`` (431)."""

    __slots__ = ("limits", "_step", "remaining", "body_size", "trailer_bytes",
                 "trailer_count")

    def __init__(self, limits):
        self.limits = limits
        self._step = self._size_line
        self.remaining = 0
        self.body_size = 0
        self.trailer_bytes = 0
        self.trailer_count = 0

    def read(self, buffer, events):
        """Append Data events for what ``buffer`` holds; True once the body and its
        trailers are complete. ProtocolError for a malformed or oversized body."""
        while self._step is not None:
            if not buffer or not self._step(buffer, events):
                return False
        return True

    def _size_line(self, buffer, events):
        line = buffer.take_line()
        if line is None:
            pending = len(buffer)
            if pending > _MAX_CHUNK_LINE:
                raise ProtocolError(400, "chunk size line too long")
            if buffer.find(b"\n") >= 0:
                raise ProtocolError(400, "bare LF in chunk size line")
            return False
        match = _CHUNK_LINE_RE.fullmatch(line)
        if match is None:
            raise ProtocolError(400, "malformed chunk size line")
        size = int(match.group(1), 16)
        if size == 0:
            self._step = self._trailer_line
        else:
            if self.body_size + size > self.limits.max_body_size:
                raise ProtocolError(413)
            self.remaining = size
            self._step = self._chunk_data
        return True

    def _chunk_data(self, buffer, events):
        data = buffer.take(self.remaining)
        self.remaining -= len(data)
        self.body_size += len(data)
        events.append(Data(data))
        if self.remaining:
            return False
        self._step = self._chunk_end
        return True

    def _chunk_end(self, buffer, events):
        if not buffer.take_crlf():
            return False
        self._step = self._size_line
        return True

    def _trailer_line(self, buffer, events):
        limits = self.limits
        line = buffer.take_line()
        if line is None:
            if len(buffer) + self.trailer_bytes > limits.max_header_bytes:
                raise ProtocolError(431, "trailer section too large")
            if buffer.find(b"\n") >= 0:
                raise ProtocolError(400, "bare LF in trailers")
            return False
        if not line:
            self._step = None       # the empty line: the message is complete
            return True
        self.trailer_bytes += len(line) + 2
        self.trailer_count += 1
        if (self.trailer_bytes > limits.max_header_bytes
                or self.trailer_count > limits.max_header_count):
            raise ProtocolError(431, "trailer section too large")
        if _HEAD_CTL_RE.search(line) or b"\r" in line or b"\n" in line:
            raise ProtocolError(400, "control character in a trailer")
        [(name, _)] = _parse_header_lines_pure(line)
        if name in _FORBIDDEN_TRAILERS:
            raise ProtocolError(400, f"{name} is not allowed in trailers")
        return True


class HTTP11Connection:
    """The server side of one HTTP/1.1 connection, without I/O (in the shape of h11).

    Bytes in (``receive_data``), events out (``next_events``: RequestHead, Data,
    END_OF_MESSAGE, ProtocolError), heads out (``serialize_head``, a module function).
    ``limits`` is any object with the App's limit attributes (max_request_line,
    max_header_bytes, max_header_count, max_body_size); ``head_cache`` a dict remembering
    accepted header sections (see parse_header_section); ``parse_lines`` the header-line
    parser. It knows nothing of routes: a front end that will not read an announced body
    (a refused request) calls ``skip_body()``, after which nothing more is read.
    """

    __slots__ = ("state", "buffer", "limits", "head_cache", "parse_lines", "_reader")

    def __init__(self, limits, head_cache=None, parse_lines=None):
        self.state = _AWAIT_HEAD
        self.buffer = ReceiveBuffer()
        self.limits = limits
        self.head_cache = head_cache
        self.parse_lines = parse_lines or _parse_header_lines
        self._reader = None

    def _goto(self, state):
        if state not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"illegal HTTP/1.1 state change: {self.state} -> {state}")
        self.state = state

    def receive_data(self, data):
        """Bytes from the peer (ignored once CLOSED)."""
        if self.state is not _CLOSED:
            self.buffer += data

    def receive(self, data, max_heads):
        """receive_data(data), then next_events(max_heads), in one call.

        Fast path: the usual packet is exactly one whole head without a body, with nothing
        buffered; it is parsed without the buffer and the loop."""
        end = data.find(_HEAD_END)
        if (end < 0 or end != len(data) - 4 or self.buffer or max_heads <= 0
                or self.state is not _AWAIT_HEAD):
            self.receive_data(data)
            return self.next_events(max_heads)
        try:
            head = self.read_head(data[:end])
        except ProtocolError as error:
            self.close()
            return [error]
        section = head.section
        if section.chunked or section.content_length:
            self._reader = (ChunkedReader(self.limits) if section.chunked
                            else ContentLengthReader(section.content_length))
            self._goto(_BODY)
            return [head]
        return [head, END_OF_MESSAGE]

    def next_events(self, max_heads):
        """The events the buffered bytes complete, in order, with at most ``max_heads``
        request heads. A head announcing a body ends the batch, so that the front end
        decides whether to read it (or skip_body()) before any of its Data; so does a head
        asking to upgrade the connection: what follows it may not be HTTP. A ProtocolError
        event is the last one ever."""
        events = []
        buffer = self.buffer
        try:
            while True:
                state = self.state
                if state is _AWAIT_HEAD:
                    if max_heads <= 0:
                        break
                    head_bytes = buffer.take_head()
                    if head_bytes is None:
                        self._check_partial_head()
                        break
                    max_heads -= 1
                    head = self.read_head(head_bytes)
                    events.append(head)
                    if head.section.chunked:
                        self._reader = ChunkedReader(self.limits)
                    elif head.section.content_length:
                        self._reader = ContentLengthReader(head.section.content_length)
                    else:
                        events.append(END_OF_MESSAGE)
                        if not buffer or head.section.upgrade:
                            break           # the usual packet: one whole head
                        continue
                    self._goto(_BODY)
                    break
                elif state is _BODY:
                    if not self._reader.read(buffer, events):
                        break
                    self._reader = None
                    self._goto(_AWAIT_HEAD)
                    events.append(END_OF_MESSAGE)
                else:
                    break
        except ProtocolError as error:
            self.close()
            events.append(error)
        return events

    def read_head(self, head_bytes):
        """The RequestHead of the bytes of a whole head; ProtocolError if it is refused."""
        limits = self.limits
        simple = _SIMPLE_REQUEST_LINE_RE.match(head_bytes)
        if simple is None or simple.end() > limits.max_request_line:
            head = parse_request_head(head_bytes, limits.max_request_line,
                                      limits.max_header_count, self.parse_lines,
                                      limits.max_header_bytes, self.head_cache)
            head.raw_path, head.path, head.query_string, head.target_host = split_target(
                head.method, head.raw_target)
            return head
        # Most heads have a plain origin-form target (no "%", no "#"): the narrower
        # request-line regex reads it with the same values and nothing to decode.
        section = parse_header_section(head_bytes, simple.end(), limits.max_header_count,
                                       self.parse_lines, limits.max_header_bytes,
                                       self.head_cache)
        method, raw_path, query, minor = simple.groups()
        head = RequestHead()
        head.method = method.decode("ascii")
        head.raw_target = None      # not kept: the target's parts are below
        head.http_version = "1.1" if minor == b"1" else "1.0"
        head.section = section
        head.raw_path = head.path = raw_path.decode("ascii")
        head.query_string = query.decode("ascii") if query else ""
        head.target_host = None
        return head

    def _check_partial_head(self):
        """Refuse an incomplete head as soon as it cannot succeed, with the answer the whole
        head would get (the request line is judged first), whatever the packet split."""
        limits = self.limits
        buffer = self.buffer
        pending = len(buffer)
        if not pending:
            return
        first_line_end = buffer.find(CRLF)
        if first_line_end < 0:
            if pending > limits.max_request_line:
                raise ProtocolError(414)
            if buffer.find(b"\n") >= 0:
                raise ProtocolError(400, "lines must end with CRLF")
            return
        rest = bytes(buffer)
        parse_request_line(rest[:first_line_end], limits.max_request_line)
        if pending > limits.max_request_line + limits.max_header_bytes + 4:
            raise ProtocolError(431, "header section too large")
        if rest.count(b"\n") != rest.count(CRLF):
            raise ProtocolError(400, "lines must end with CRLF")

    def skip_body(self):
        """The front end will not read the body just announced (it answers and closes)."""
        self.close()

    def close(self):
        """Read nothing more."""
        self._goto(_CLOSED)
        self.buffer.clear()
        self._reader = None


_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_STATUS_200 = b"HTTP/1.1 200 OK\r\n"
_OCTET_STREAM_LINE = b"Content-Type: application/octet-stream\r\n"
_TEXT_HTML_LINE = b"Content-Type: text/html; charset=utf-8\r\n"
_KEEP_ALIVE_10 = b"Connection: keep-alive\r\n"
_CLOSE = b"Connection: close\r\n"
# Fields a response's headers may not set: the serialiser writes them from the framing.
_FRAMING_RESPONSE_FIELDS = ("content-length", "transfer-encoding", "connection", "date")


def serialize_head(response, version, keep_alive):
    """Serialise a response's status line and headers for an HTTP/1.1 connection; every
    writer uses this. Returns ``(head bytes, body bytes or None, keep_alive)``: the body is
    None when it must be streamed (iterable or file); ``keep_alive`` is False when the
    response closes the connection (asked for, or a streamed body HTTP/1.0 cannot frame)."""
    body = response.body
    if response._headers is None and response.status == 200 and body:
        # The common response: a 200 with a body in memory and at most a content type.
        content_type = response._content_type
        if type(body) is bytes:
            line = (_OCTET_STREAM_LINE if content_type is None
                    else _CONTENT_TYPE_LINES.get(content_type))
        elif type(body) is str:
            body = body.encode("utf-8")
            line = (_TEXT_HTML_LINE if content_type is None
                    else _CONTENT_TYPE_LINES.get(content_type))
        else:
            line = None
        if line is not None:
            if keep_alive:
                connection = _KEEP_ALIVE_10 if version == "1.0" else b""
            else:
                connection = _CLOSE
            return b"%s%sContent-Length: %d\r\n%s%s\r\n" % (
                _STATUS_200, line, len(body), _date_cache.line, connection), body, keep_alive
    return _serialize_head_fully(response, version, keep_alive)


def _serialize_head_fully(response, version, keep_alive):
    head = response_head(response)
    lines = [_STATUS_LINES.get(head.status)
             or f"HTTP/1.1 {head.status} {STATUS_REASONS.get(head.status, 'Unknown')}\r\n".encode()]
    for name, value in head.fields:
        if name == "Content-Type":
            line = _CONTENT_TYPE_LINES.get(value)
            if line is None:
                line = f"Content-Type: {value}\r\n".encode("latin-1", "replace")
                if len(_CONTENT_TYPE_LINES) < 64:     # the few types an app uses
                    _CONTENT_TYPE_LINES[value] = line  # (serialize_head's fast case reads it)
            lines.append(line)
        else:
            lines.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
    if head.length is not None:
        lines.append(b"Content-Length: %d\r\n" % head.length)
    elif head.body is None:                    # streamed, of unknown length
        if version == "1.1":
            lines.append(b"Transfer-Encoding: chunked\r\n")
        else:
            keep_alive = False                 # HTTP/1.0: the close ends the body
    lines.append(_date_cache.line)
    keep_alive = keep_alive and not head.close
    if head.status == 101:
        lines.append(b"Connection: Upgrade\r\n")     # the connection changes protocol
    elif not keep_alive:
        lines.append(_CLOSE)
    elif version == "1.0":
        lines.append(_KEEP_ALIVE_10)
    lines.append(CRLF)
    return b"".join(lines), head.body, keep_alive


# What every front end sends of a response, before its own framing: the status, the header
# fields (Content-Type first; never Content-Length, Transfer-Encoding, Connection or Date,
# which each front end writes its own way), the body as bytes or None when it is streamed,
# its length when known (None for a status without a body, or a stream of unknown length),
# and whether the response asked to close the connection.
_ResponseHead = namedtuple("_ResponseHead", ["status", "fields", "body", "length", "close"])


def response_head(response):
    """The _ResponseHead of a Response (its serialisation for any front end: HTTP/1.1 by
    serialize_head, ASGI and WSGI by their adapters)."""
    status = response.status
    if type(status) is not int or not 100 <= status <= 999:
        log.error("invalid response status %r: a status is a 3-digit integer", status)
        response = error_response(500)
        status = 500
    body = response.body
    fields = []
    close = False
    no_body = status in (204, 304) or status < 200
    content_type = response._content_type
    if content_type is not None:
        fields.append(("Content-Type", content_type))
    if response._headers:
        for name, value in response._headers.items():
            lower = name.lower()
            if lower in _FRAMING_RESPONSE_FIELDS:
                if lower == "connection" and value.lower() == "close":
                    close = True
                continue
            if lower == "content-type":
                content_type = value
            fields.append((name, value))
    if isinstance(body, str):
        body = body.encode("utf-8")
        if content_type is None and body:
            fields.append(("Content-Type", "text/html; charset=utf-8"))
    if no_body:
        body = b""
    elif body is None and not isinstance(response, FileResponse):
        body = b""
    if isinstance(body, (bytes, bytearray, memoryview)):
        if content_type is None and body and not isinstance(response.body, str):
            fields.append(("Content-Type", "application/octet-stream"))
        length = None if no_body else len(body)
    else:
        body = None
        length = getattr(response, "_size", None)
    return _ResponseHead(status, fields, body, length, close)


# ---- WebSocket connection (sans-IO) ----------------------------------------------------------
# Bytes in, events out, no sockets and no asyncio, in the shape of the HTTP/1.1 connection: the
# handshake checks (RFC 6455 4.2), permessage-deflate negotiation (RFC 7692 7.1), the events,
# WebSocketState, and WebSocketConnection, which unframes what the peer sends and frames what
# the front end sends. The rules it keeps:
# - a peer that breaks RFC 6455 or RFC 7692 gets one WebSocketProtocolError event carrying the
#   RFC's close code; it is the last event, as the peer's close is: nothing more is read;
# - a message never holds more than max_message_size bytes: a frame's length is checked as soon
#   as its header arrives, before its payload is buffered, and inflating stops at the limit;
# - text is checked to be UTF-8 fragment by fragment, as it arrives;
# - the front end does the rest: it writes what send_*() return, answers pings, runs the ping
#   and close timers and closes the TCP connection.

_WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"      # RFC 6455 1.3
_OP_CONTINUATION, _OP_TEXT, _OP_BINARY = 0, 1, 2                 # opcodes (RFC 6455 5.2)
_OP_CLOSE, _OP_PING, _OP_PONG = 8, 9, 10                         # control frames: opcode >= 8
_KNOWN_OPCODES = frozenset({_OP_CONTINUATION, _OP_TEXT, _OP_BINARY,
                            _OP_CLOSE, _OP_PING, _OP_PONG})
_MAX_CONTROL_PAYLOAD = 125
_MAX_FRAME_LENGTH = (1 << 63) - 1     # the 64-bit length's top bit must be 0
_EXTENDED_LENGTH_SIZES = {126: 2, 127: 8}
_RSV1 = 0x40                          # the "compressed" bit of permessage-deflate
_NO_STATUS = 1005                     # stands for a close frame without a code (never sent)
_MAX_CLOSE_REASON = _MAX_CONTROL_PAYLOAD - 2   # bytes of UTF-8 after the 2-byte code
# Each flush of a DEFLATE stream ends with this empty stored block; permessage-deflate drops
# it from the end of every message and the receiver puts it back (RFC 7692 7.2.1, 7.2.2).
_DEFLATE_TAIL = b"\x00\x00\xff\xff"
_WINDOW_BITS = {str(bits): bits for bits in range(8, 16)}   # "8".."15": no sign, no zero first
_DEFLATE_PARAMETERS = frozenset({"server_no_context_takeover", "client_no_context_takeover",
                                 "server_max_window_bits", "client_max_window_bits"})
_QUOTED_PAIR_RE = re.compile(r"\\(.)")
_utf8_decoder = codecs.getincrementaldecoder("utf-8")


def websocket_accept_key(key):
    """The Sec-WebSocket-Accept value answering a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    import hashlib
    digest = hashlib.sha1(key.encode("ascii") + _WEBSOCKET_GUID).digest()
    return base64.b64encode(digest).decode("ascii")


class WebSocketOffer(namedtuple("WebSocketOffer", ["key", "subprotocols", "extensions"])):
    """An accepted handshake request (check_handshake's result): the client's ``key``, the
    ``subprotocols`` it offers in its order of preference, and its ``extensions`` offers for
    negotiate_deflate, each ``(name, [(parameter, value or None), ...])``, names lower-cased."""

    __slots__ = ()


def check_handshake(method, http_version, headers):
    """The WebSocketOffer of a handshake request (RFC 6455 4.2.1), else HTTPError.

    ``headers`` is any object whose ``getall(name)`` lists the values of the field with that
    lower-case name (``request.headers``). A request that is not an upgrade to WebSocket over
    HTTP/1.1 (HTTP/1.0 ignores Upgrade) -> 426 with ``Upgrade: websocket``; a version other
    than 13 -> 426 with ``Sec-WebSocket-Version: 13``; a method other than GET, a missing or
    invalid key, a malformed subprotocol or extension list -> 400.
    """
    upgrade = _lower_items(headers.getall("upgrade"))
    connection = _lower_items(headers.getall("connection"))
    if http_version != "1.1" or "websocket" not in upgrade or "upgrade" not in connection:
        raise HTTPError(426, "this resource only speaks WebSocket", {"Upgrade": "websocket"})
    if method != "GET":
        raise HTTPError(400, "a WebSocket handshake must be a GET request")
    if _comma_items(headers.getall("sec-websocket-version")) != ["13"]:
        raise HTTPError(426, "only WebSocket version 13 is supported",
                        {"Sec-WebSocket-Version": "13"})
    keys = headers.getall("sec-websocket-key")
    if len(keys) != 1 or not _is_websocket_key(keys[0].strip(" \t")):
        raise HTTPError(400, "Sec-WebSocket-Key must be the base64 of 16 bytes")
    subprotocols = _comma_items(headers.getall("sec-websocket-protocol"))
    if not all(_STR_TOKEN_RE.fullmatch(name) for name in subprotocols):
        raise HTTPError(400, "malformed Sec-WebSocket-Protocol")
    extensions = _parse_extensions(headers.getall("sec-websocket-extensions"))
    if extensions is None:
        raise HTTPError(400, "malformed Sec-WebSocket-Extensions")
    return WebSocketOffer(keys[0].strip(" \t"), subprotocols, extensions)


def _comma_items(values):
    """The items of comma-separated field values, without their spaces; empty ones skipped."""
    return [item for value in values for item in
            (part.strip(" \t") for part in value.split(",")) if item]


def _lower_items(values):
    return {item.lower() for item in _comma_items(values)}


def _is_websocket_key(key):
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except ValueError:                # binascii.Error, or a non-ASCII character
        return False


def _parse_extensions(values):
    """The offers of Sec-WebSocket-Extensions values (RFC 6455 9.1), in WebSocketOffer's
    form; None if the list is malformed. A quoted value must be a token once unquoted."""
    offers = []
    for item in _comma_items(values):
        name, *parameters = [part.strip(" \t") for part in item.split(";")]
        if not _STR_TOKEN_RE.fullmatch(name):
            return None
        pairs = []
        for parameter in parameters:
            key, equals, value = parameter.partition("=")
            key, value = key.rstrip(" \t"), value.lstrip(" \t")
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = _QUOTED_PAIR_RE.sub(r"\1", value[1:-1])
            if not _STR_TOKEN_RE.fullmatch(key):
                return None
            if equals and not _STR_TOKEN_RE.fullmatch(value):
                return None
            pairs.append((key.lower(), value if equals else None))
        offers.append((name.lower(), pairs))
    return offers


class DeflateParameters(namedtuple("DeflateParameters", [
        "server_no_context_takeover", "client_no_context_takeover",
        "server_max_window_bits", "client_max_window_bits"])):
    """What both ends agreed on for permessage-deflate (RFC 7692 7.1): a flag for each
    ``*_no_context_takeover`` and each ``*_max_window_bits`` (8 to 15; None means 15)."""

    __slots__ = ()


def negotiate_deflate(offers, enabled=True):
    """``(answer, parameters)`` for the client's extension offers (WebSocketOffer.extensions):
    the Sec-WebSocket-Extensions value accepting its first acceptable permessage-deflate offer
    and the DeflateParameters for WebSocketConnection; ``(None, None)`` when there is none or
    ``enabled`` is false. A malformed offer (an unknown or repeated parameter, a bad value) is
    declined and the next one tried (RFC 7692 5, 7.1). Every parameter offered is granted as
    offered: the server never asks for more than the client did."""
    if enabled:
        for name, parameters in offers:
            if name == "permessage-deflate":
                accepted = _accept_deflate_offer(parameters)
                if accepted is not None:
                    return _deflate_answer(accepted), accepted
    return None, None


def _accept_deflate_offer(parameters):
    values = dict(parameters)
    if len(values) != len(parameters) or not values.keys() <= _DEFLATE_PARAMETERS:
        return None
    if (values.get("server_no_context_takeover") is not None
            or values.get("client_no_context_takeover") is not None):
        return None                   # these two take no value
    server_bits = values.get("server_max_window_bits")
    if "server_max_window_bits" in values and server_bits not in _WINDOW_BITS:
        return None                   # a value is required
    client_bits = values.get("client_max_window_bits")
    if client_bits is not None and client_bits not in _WINDOW_BITS:
        return None                   # the value is optional: without one, the client uses 15
    return DeflateParameters(
        "server_no_context_takeover" in values, "client_no_context_takeover" in values,
        _WINDOW_BITS.get(server_bits), _WINDOW_BITS.get(client_bits))


def _deflate_answer(parameters):
    words = ["permessage-deflate"]
    if parameters.server_no_context_takeover:
        words.append("server_no_context_takeover")
    if parameters.client_no_context_takeover:
        words.append("client_no_context_takeover")
    if parameters.server_max_window_bits:
        words.append(f"server_max_window_bits={parameters.server_max_window_bits}")
    if parameters.client_max_window_bits:
        words.append(f"client_max_window_bits={parameters.client_max_window_bits}")
    return "; ".join(words)


def websocket_frame(opcode, payload, fin=True, rsv1=False, mask=None):
    """One frame (RFC 6455 5.2) as bytes. ``opcode`` is the RFC's number (0 continuation,
    1 text, 2 binary, 8 close, 9 ping, 10 pong); ``mask`` 4 bytes (a client masks every
    frame), or None. Lengths use the shortest encoding."""
    first = (0x80 if fin else 0) | (_RSV1 if rsv1 else 0) | opcode
    length = len(payload)
    mask_bit = 0 if mask is None else 0x80
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if mask is None:
        return header + payload
    return header + mask + _apply_mask(payload, mask)


def _apply_mask(payload, mask):
    """``payload`` XOR ``mask`` repeated (RFC 6455 5.3); it both masks and unmasks."""
    # One XOR of two big integers runs in C: a loop over the bytes would be ~100 times slower.
    length = len(payload)
    key = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        length, "little")


def _valid_close_code(code):
    """A code a close frame may carry (RFC 6455 7.4; 1012-1014 are registered with IANA)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _compressed_frame_limit(max_message_size):
    """The longest compressed frame accepted: DEFLATE makes data that does not compress a
    little longer (some bytes per block and per flush); 1/8 more leaves room for any encoder."""
    return max_message_size + max_message_size // 8 + 64


# -- events: what WebSocketConnection.receive() returns --

class TextMessage(namedtuple("TextMessage", ["data"])):
    """Event: a whole text message, as str."""

    __slots__ = ()


class BinaryMessage(namedtuple("BinaryMessage", ["data"])):
    """Event: a whole binary message, as bytes."""

    __slots__ = ()


class Ping(namedtuple("Ping", ["payload"])):
    """Event: a ping; the front end answers ``send_pong(payload)`` while the state is OPEN."""

    __slots__ = ()


class Pong(namedtuple("Pong", ["payload"])):
    """Event: a pong (the answer to a ping, or a heartbeat nobody asked for)."""

    __slots__ = ()


class CloseReceived(namedtuple("CloseReceived", ["code", "reason"])):
    """Event: the peer's close frame, ``code`` (1005 when it carried none) and ``reason``.
    Nothing more is read; ``send_close()`` answers it with the same code."""

    __slots__ = ()


class WebSocketProtocolError(Exception):
    """Event: the peer broke RFC 6455 or RFC 7692. ``code`` is the close code to answer with
    (1002 protocol error, 1007 invalid data, 1009 message too big), ``reason`` says what was
    wrong. Nothing more is read; ``send_close()`` sends that close, then the front end closes
    the TCP connection without waiting for the peer's close."""

    def __init__(self, code, reason):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class WebSocketState(Enum):
    """Where a WebSocketConnection is in the closing handshake (RFC 6455 7). Transitions:

    OPEN -> CLOSING    send_close(): messages may still arrive until the peer's close; or a
                       CloseReceived or WebSocketProtocolError event: nothing more is read,
                       and the front end answers with send_close()
    CLOSING -> CLOSED  the other half of that: the peer's close after ours, or our close
                       after the peer's (or after a violation). CLOSED is final.
    In CLOSED the server closes the TCP connection (a client waits for the server to).
    """

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class WebSocketConnection:
    """One end of a WebSocket connection once the handshake is done, without I/O.

    Bytes in (``receive``), events out (TextMessage, BinaryMessage, Ping, Pong, CloseReceived,
    WebSocketProtocolError), bytes to write out of ``send_text``, ``send_bytes``,
    ``send_ping``, ``send_pong`` and ``send_close``. ``deflate`` is negotiate_deflate's
    DeflateParameters (None: no compression); data messages are then compressed, each in one
    frame. ``client=True`` makes this the client end (the test client's): it masks what it
    sends and refuses masked frames. Sending anything after send_close() is a RuntimeError.
    """

    __slots__ = ("max_message_size", "deflate", "_client", "_buffer", "_reading",
                 "_close_sent", "_answer", "_header", "_message_opcode", "_compressed",
                 "_message_size", "_parts", "_decoder", "_compressed_limit", "_inflater",
                 "_inflate_bits", "_reset_inflater", "_deflater", "_deflate_bits",
                 "_flush_mode")

    def __init__(self, max_message_size=1024 * 1024, deflate=None, client=False):
        self.max_message_size = max_message_size
        self.deflate = deflate
        self._client = client
        self._buffer = ReceiveBuffer()
        self._reading = True
        self._close_sent = False
        self._answer = (1000, "")          # what send_close() sends by default
        self._header = None                # (fin, opcode, mask, length) awaiting its payload
        self._message_opcode = None        # _OP_TEXT or _OP_BINARY while a message arrives
        self._compressed = False
        self._message_size = 0
        self._parts = []
        self._decoder = None
        self._compressed_limit = _compressed_frame_limit(max_message_size)
        self._inflater = self._deflater = None     # created when first needed
        if deflate is not None:
            if client:
                local_reset, local_bits = (deflate.client_no_context_takeover,
                                           deflate.client_max_window_bits)
                self._reset_inflater = deflate.server_no_context_takeover
                self._inflate_bits = deflate.server_max_window_bits or 15
            else:
                local_reset, local_bits = (deflate.server_no_context_takeover,
                                           deflate.server_max_window_bits)
                self._reset_inflater = deflate.client_no_context_takeover
                self._inflate_bits = deflate.client_max_window_bits or 15
            # zlib refuses a raw DEFLATE window of 8 bits; one of 9 is safe in its place, as
            # zlib never refers further back than the window minus 262 bytes: 250 < 256.
            self._deflate_bits = max(local_bits or 15, 9)
            # A full flush also forgets the history, so the next message starts afresh.
            self._flush_mode = zlib.Z_FULL_FLUSH if local_reset else zlib.Z_SYNC_FLUSH

    @property
    def state(self):
        """The WebSocketState, from which halves of the closing handshake are done."""
        if self._reading:
            return WebSocketState.CLOSING if self._close_sent else WebSocketState.OPEN
        return WebSocketState.CLOSED if self._close_sent else WebSocketState.CLOSING

    # -- receiving --

    def receive(self, data):
        """Bytes from the peer: the events they complete, in order; none once nothing more is
        read (after a CloseReceived or WebSocketProtocolError event, always the last)."""
        if not self._reading:
            return []
        buffer = self._buffer
        buffer += data
        events = []
        try:
            while self._reading:
                if self._header is None:
                    if len(buffer) < 2:
                        break                   # (the usual end: nothing left)
                    self._header = self._read_header()
                    if self._header is None:
                        break
                fin, opcode, mask, length = self._header
                if len(buffer) < length:
                    break
                self._header = None
                payload = buffer.take(length)
                if mask is not None:
                    payload = _apply_mask(payload, mask)
                if opcode >= _OP_CLOSE:
                    self._control_frame(opcode, payload, events)
                else:
                    self._data_frame(fin, payload, events)
        except WebSocketProtocolError as error:
            self._stop_reading(error.code, error.reason)
            events.append(error)
        return events

    def _read_header(self):
        """``(fin, opcode, mask or None, length)`` of the next frame, its header consumed and
        checked; None until the whole header is buffered."""
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        second = buffer[1]
        length = second & 0x7F
        extra = _EXTENDED_LENGTH_SIZES.get(length, 0)
        masked = second & 0x80
        size = 2 + extra + (4 if masked else 0)
        if len(buffer) < size:
            return None
        header = buffer.take(size)
        if extra:
            length = int.from_bytes(header[2:2 + extra], "big")
        mask = header[2 + extra:] if masked else None
        fin, opcode = bool(header[0] & 0x80), header[0] & 0x0F
        self._check_frame(fin, header[0] & 0x70, opcode, mask is not None, length)
        return fin, opcode, mask, length

    def _check_frame(self, fin, rsv, opcode, masked, length):
        """Refuse a frame from its header alone; start a message on its first frame."""
        if opcode not in _KNOWN_OPCODES:
            raise WebSocketProtocolError(1002, f"unknown opcode {opcode}")
        if masked == self._client:
            raise WebSocketProtocolError(1002, "masked frame from the server" if masked
                                         else "unmasked frame from the client")
        if rsv and (rsv != _RSV1 or self.deflate is None
                    or opcode not in (_OP_TEXT, _OP_BINARY)):
            raise WebSocketProtocolError(1002, "reserved bits set")
        if opcode >= _OP_CLOSE:
            if not fin:
                raise WebSocketProtocolError(1002, "fragmented control frame")
            if length > _MAX_CONTROL_PAYLOAD:
                raise WebSocketProtocolError(1002, "control frame over 125 bytes")
            return
        if length > _MAX_FRAME_LENGTH:
            raise WebSocketProtocolError(1002, "frame length with its top bit set")
        if opcode == _OP_CONTINUATION:
            if self._message_opcode is None:
                raise WebSocketProtocolError(1002, "continuation frame without a message")
        elif self._message_opcode is not None:
            raise WebSocketProtocolError(1002, "new message inside a fragmented message")
        else:
            self._message_opcode = opcode
            self._compressed = bool(rsv)
        if self._compressed:
            if length > self._compressed_limit:
                raise WebSocketProtocolError(1009, "message too big")
        elif self._message_size + length > self.max_message_size:
            raise WebSocketProtocolError(1009, "message too big")

    def _control_frame(self, opcode, payload, events):
        if opcode == _OP_PING:
            events.append(Ping(payload))
        elif opcode == _OP_PONG:
            events.append(Pong(payload))
        else:
            code, reason = _parse_close(payload)
            events.append(CloseReceived(code, reason))
            self._stop_reading(code, "")

    def _data_frame(self, fin, payload, events):
        if self._compressed:
            payload = self._inflate(payload, fin)
        self._message_size += len(payload)
        is_text = self._message_opcode == _OP_TEXT
        if is_text:
            payload = self._decode(payload, fin)
        if not fin:
            self._parts.append(payload)
            return
        if self._parts:
            self._parts.append(payload)
            payload = ("" if is_text else b"").join(self._parts)
        events.append(TextMessage(payload) if is_text else BinaryMessage(payload))
        self._end_message()

    def _decode(self, payload, fin):
        """The text of a frame of a text message; a sequence that is not UTF-8 is refused as
        soon as it arrives (fragmented messages go through an incremental decoder)."""
        try:
            if self._decoder is None:
                if fin:
                    return str(payload, "utf-8")    # a whole message in one frame
                self._decoder = _utf8_decoder()
            return self._decoder.decode(payload, fin)
        except UnicodeDecodeError:
            raise WebSocketProtocolError(1007, "invalid UTF-8 in a text message") from None

    def _inflate(self, payload, fin):
        """The decompressed payload of a frame of a compressed message (RFC 7692 7.2.2),
        never longer than what the message may still hold: 1009 at the first byte over."""
        if fin:
            payload += _DEFLATE_TAIL
        budget = self.max_message_size - self._message_size
        pieces = []
        while True:
            if self._inflater is None:
                self._inflater = zlib.decompressobj(-self._inflate_bits)
            try:    # (zlib takes a C size: a limit beyond it is no limit)
                piece = self._inflater.decompress(payload, min(budget + 1, sys.maxsize))
            except zlib.error:
                raise WebSocketProtocolError(1007, "invalid compressed data") from None
            budget -= len(piece)
            if budget < 0:
                raise WebSocketProtocolError(1009, "message too big")
            pieces.append(piece)
            if not self._inflater.eof:
                return b"".join(pieces)
            # The peer ended its DEFLATE stream (a block with BFINAL set, RFC 7692 7.2.3.4):
            # what follows starts a new one, without the history (as browsers do).
            payload = self._inflater.unused_data
            self._inflater = None

    def _end_message(self):
        self._message_opcode = None
        self._message_size = 0
        self._parts = []
        self._decoder = None
        if self._compressed and self._reset_inflater:
            self._inflater = None

    def _stop_reading(self, code, reason):
        self._reading = False
        self._answer = (code, reason)
        self._buffer.clear()
        self._header = None
        self._parts = []
        self._decoder = self._inflater = None

    # -- sending --

    def send_text(self, text):
        """The frame of a text message."""
        return self._message(_OP_TEXT, text.encode("utf-8"))

    def send_bytes(self, data):
        """The frame of a binary message."""
        return self._message(_OP_BINARY, data)

    def send_ping(self, payload=b""):
        """The frame of a ping (at most 125 bytes of payload)."""
        return self._control(_OP_PING, payload)

    def send_pong(self, payload=b""):
        """The frame of a pong (at most 125 bytes of payload)."""
        return self._control(_OP_PONG, payload)

    def send_close(self, code=None, reason=""):
        """The close frame. Without a ``code``: the answer owed to a CloseReceived (the same
        code) or to a WebSocketProtocolError (its code and reason), else 1000. ``code`` is one
        of 1000-1003, 1007-1014, 3000-4999, ``reason`` at most 123 bytes of UTF-8."""
        self._check_can_send()
        if code is None:
            code, reason = self._answer
            payload = b"" if code == _NO_STATUS else _close_payload(code, reason)
        else:
            payload = _close_payload(code, reason)
        self._close_sent = True
        return self._frame(_OP_CLOSE, payload)

    def _message(self, opcode, payload):
        self._check_can_send()
        if self.deflate is None:
            return self._frame(opcode, payload)
        return self._frame(opcode, self._compress(payload), rsv1=True)

    def _control(self, opcode, payload):
        if len(payload) > _MAX_CONTROL_PAYLOAD:
            raise ValueError("a ping or pong carries at most 125 bytes")
        self._check_can_send()
        return self._frame(opcode, payload)

    def _check_can_send(self):
        if self._close_sent:
            raise RuntimeError("this WebSocket sent its close frame: nothing may follow it")

    def _frame(self, opcode, payload, rsv1=False):
        mask = os.urandom(4) if self._client else None
        return websocket_frame(opcode, payload, True, rsv1, mask)

    def _compress(self, payload):
        """A message's payload compressed (RFC 7692 7.2.1), without the final empty block."""
        if self._deflater is None:
            self._deflater = zlib.compressobj(wbits=-self._deflate_bits)
        data = self._deflater.compress(payload) + self._deflater.flush(self._flush_mode)
        return data[:-len(_DEFLATE_TAIL)]


def _parse_close(payload):
    """``(code, reason)`` of a close frame's payload; WebSocketProtocolError if invalid."""
    if not payload:
        return _NO_STATUS, ""
    if len(payload) == 1:
        raise WebSocketProtocolError(1002, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not _valid_close_code(code):
        raise WebSocketProtocolError(1002, f"invalid close code {code}")
    try:
        return code, payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketProtocolError(1007, "invalid UTF-8 in a close reason") from None


def _close_payload(code, reason):
    if not _valid_close_code(code):
        raise ValueError(f"close code {code} cannot be sent: use 1000-1003, 1007-1014 or "
                         f"3000-4999")
    reason = reason.encode("utf-8")
    if len(reason) > _MAX_CLOSE_REASON:
        raise ValueError("a close reason is at most 123 bytes of UTF-8")
    return code.to_bytes(2, "big") + reason


# ---- WebSockets ------------------------------------------------------------------------------
# The ``ws`` a WebSocket handler gets (WebSocket), over a channel of its front end: the
# built-in server's _WebSocketProtocol (the asyncio glue between a WebSocketConnection and the
# transport, which it takes over after the 101) or the ASGI adapter's _ASGIWebSocketChannel.
# A channel has ``accept(ws, subprotocol, headers)``, ``receive()`` (a message, or
# WebSocketClosed), ``send(str | bytes)`` and ``close(code, reason)``, and keeps
# ``ws.close_code`` and ``ws.close_reason``.

_WS_QUEUE_LIMIT = 16        # messages received and not yet read: beyond, reading pauses
_ABNORMAL_CLOSURE = 1006    # the close code of a connection that ended without a close frame


class WebSocket:
    """The ``ws`` of an ``@app.websocket`` handler: accept, receive, send, close, and
    ``async for message in ws`` (ending when the peer closes)."""

    def __init__(self, request, channel, offered, preferred=None):
        self.request = request
        self.subprotocols = list(offered)   # what the client offered, in its order
        self.subprotocol = None
        self.close_code = None              # of the first close frame sent or received
        self.close_reason = ""
        self._channel = channel
        self._preferred = preferred         # the route's subprotocols, in the server's order
        self._accepted = False
        self._refused = False               # close() before accept(): a 403 answer

    @property
    def closed(self):
        """True once a close frame was sent or received (or the connection dropped)."""
        return self.close_code is not None

    async def accept(self, subprotocol=None, headers=None):
        """Complete the handshake with a 101: with ``subprotocol`` (one the client offered;
        by default the first of the route's ``subprotocols`` that it offered) and extra
        ``headers``. Sending, receiving or iterating accepts implicitly."""
        if self._accepted:
            raise RuntimeError("this WebSocket is already accepted")
        if subprotocol is None and self._preferred:
            subprotocol = next((name for name in self._preferred
                                if name in self.subprotocols), None)
        elif subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client "
                             f"(it offered: {', '.join(self.subprotocols) or 'none'})")
        fields = Headers(headers or {})     # checks names and values like any response's
        self._accepted = True
        self.subprotocol = subprotocol
        await self._channel.accept(self, subprotocol, list(fields.items()))
        self.request._switched = True

    def receive(self):
        """The next message: ``str`` for text, ``bytes`` for binary. Once the connection is
        closed (and the messages that came before are read): WebSocketClosed. (A plain
        function returning the channel's coroutine: one coroutine less per message.)"""
        if not self._accepted:
            return self._accept_then(self._channel.receive)
        return self._channel.receive()

    async def _accept_then(self, step, *args):
        await self.accept()
        return await step(*args)

    async def receive_text(self):
        message = await self.receive()
        if not isinstance(message, str):
            raise TypeError("expected a text message, got a binary one")
        return message

    async def receive_bytes(self):
        message = await self.receive()
        if not isinstance(message, bytes):
            raise TypeError("expected a binary message, got a text one")
        return message

    async def receive_json(self):
        """The next message (text or binary) parsed as JSON."""
        return json_loads(await self.receive())

    def send(self, data):
        """Send a text (``str``) or binary (bytes-like) message; waits while the client is
        slow to read. WebSocketClosed once the connection is closed. (Like receive, a plain
        function returning a coroutine.)"""
        kind = type(data)
        if kind is not str and kind is not bytes:
            if not isinstance(data, (str, bytes, bytearray, memoryview)):
                raise TypeError(f"send() takes str or bytes, not {kind.__name__} "
                                f"(send_json sends other values)")
            data = data if isinstance(data, (str, bytes)) else bytes(data)
        if not self._accepted:
            return self._accept_then(self._channel.send, data)
        return self._channel.send(data)

    def send_json(self, value):
        """Send ``value`` as JSON in a text message."""
        return self.send(json_dumps(value).decode("utf-8"))

    async def close(self, code=1000, reason=""):
        """Start the closing handshake with ``code`` (1000, 1001-1003, 1007-1014 or
        3000-4999) and ``reason`` (at most 123 bytes of UTF-8); nothing when already closed.
        Before the handshake completed, the connection is refused with 403 instead."""
        if not self._accepted:
            self._refused = True
            return
        if self.close_code is None:
            await self._channel.close(code, reason)

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            if not self._accepted:
                await self.accept()
            return await self._channel.receive()
        except WebSocketClosed:
            raise StopAsyncIteration from None

    def __repr__(self):
        state = "closed" if self.closed else "open" if self._accepted else "handshake"
        return f"<WebSocket {self.request.raw_path} {state}>"


def _closed_error(ws):
    return WebSocketClosed(ws.close_code or _ABNORMAL_CLOSURE, ws.close_reason)


def _negotiated_connection(app, offer, client=False):
    """``(Sec-WebSocket-Extensions answer or None, WebSocketConnection)`` for a handshake."""
    answer, deflate = negotiate_deflate(offer.extensions, app.websocket_compression)
    return answer, WebSocketConnection(app.max_ws_message_size, deflate, client)


class _WebSocketProtocol:
    """The built-in server's channel for one WebSocket, and, from the 101 on, the asyncio
    protocol of its connection (HTTPProtocol hands the transport over with set_protocol)."""

    def __init__(self, http, request):
        self.http = http                    # the HTTPProtocol, until the switch
        self.server = http.server
        self.app = http.app
        self.loop = http.loop
        self.request = request
        self.transport = None
        self.ws = None
        self.codec = None
        self._messages = deque()
        self._waiter = None                 # the handler, waiting in receive()
        self._drain_waiter = None           # the handler, waiting in send()
        self._writing_paused = False
        self._reading_paused = False
        self._gone = False                  # the TCP connection has closed
        self._timers = {}                   # "ping", "pong", "close" -> a TimerHandle

    # -- the channel --

    async def accept(self, ws, subprotocol, extra):
        self.ws = ws
        offer = self.request._websocket_offer
        answer, self.codec = _negotiated_connection(self.app, offer)
        fields = [("Upgrade", "websocket"), ("Sec-WebSocket-Accept",
                                             websocket_accept_key(offer.key))]
        if subprotocol is not None:
            fields.append(("Sec-WebSocket-Protocol", subprotocol))
        if answer is not None:
            fields.append(("Sec-WebSocket-Extensions", answer))
        head, _, _ = serialize_head(Response(None, 101, headers=fields + extra), "1.1", True)
        self.transport = self.http.switch_protocols(head, self)
        self.server.websockets.add(self)
        self._schedule_ping()
        if self.server.shutting_down:       # accepted while the server stops: 1001 now
            self.going_away()

    async def receive(self):
        messages = self._messages
        while not messages:
            if self.ws.close_code is not None:
                raise _closed_error(self.ws)
            self._waiter = self.loop.create_future()
            await self._waiter
        message = messages.popleft()
        if self._reading_paused and len(self._messages) <= _WS_QUEUE_LIMIT // 2:
            self._reading_paused = False
            if not self._gone:
                self.transport.resume_reading()
        return message

    async def send(self, data):
        if self.ws.close_code is not None:
            raise _closed_error(self.ws)
        self.transport.write(self.codec.send_text(data) if type(data) is str
                             else self.codec.send_bytes(data))
        if self._writing_paused and not self._gone:
            self._drain_waiter = self.loop.create_future()
            await self._drain_waiter

    async def close(self, code, reason):
        self._send_close(code, reason)

    def going_away(self):
        """The server is shutting down: close with 1001."""
        self._send_close(1001, "the server is shutting down")

    # -- asyncio.Protocol (after the switch) --

    def data_received(self, data):
        try:
            self._received(self.codec.receive(data))
        except Exception:               # a bug costs this connection, never the server
            log.exception("error in a WebSocket connection")
            self.transport.abort()

    def eof_received(self):
        return False                     # a half-closed WebSocket is over: close

    def connection_lost(self, exc):
        try:
            self._lost()
        except Exception:
            log.exception("error while closing a WebSocket connection")

    def pause_writing(self):
        self._writing_paused = True

    def resume_writing(self):
        self._writing_paused = False
        self._wake("_drain_waiter")

    # -- the work of the callbacks --

    def _received(self, events):
        for event in events:
            kind = type(event)
            if kind is TextMessage or kind is BinaryMessage:
                self._messages.append(event.data)
                if len(self._messages) >= _WS_QUEUE_LIMIT and not self._reading_paused:
                    self._reading_paused = True          # until the handler catches up
                    self.transport.pause_reading()
            elif kind is Ping:
                if self.ws.close_code is None:
                    self.transport.write(self.codec.send_pong(event.payload))
            elif kind is Pong:
                self._cancel("pong")
            else:       # CloseReceived or WebSocketProtocolError: the last event
                self._closed_by(event.code, event.reason)
                if self.codec.state is not WebSocketState.CLOSED:
                    self.transport.write(self.codec.send_close())    # the answer it is owed
                self.transport.close()       # the server closes the TCP connection first
        self._wake("_waiter")

    def _send_close(self, code, reason):
        if self._gone or self.codec.state is not WebSocketState.OPEN:
            return
        frame = self.codec.send_close(code, reason)      # raises ValueError if invalid
        self._closed_by(code, reason)
        self.transport.write(frame)
        self._timers["close"] = self.loop.call_later(self.app.ws_close_timeout,
                                                     self.transport.close)
        self._wake("_waiter")

    def _closed_by(self, code, reason):
        if self.ws.close_code is None:
            self.ws.close_code, self.ws.close_reason = code, reason

    def _lost(self):
        self._gone = True
        self._closed_by(_ABNORMAL_CLOSURE, "")
        for name in list(self._timers):
            self._cancel(name)
        self.server.websockets.discard(self)
        self._wake("_waiter")
        self._wake("_drain_waiter")

    def _wake(self, name):
        waiter = getattr(self, name)
        if waiter is not None:
            setattr(self, name, None)
            if not waiter.done():
                waiter.set_result(None)

    def _cancel(self, name):
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _schedule_ping(self):
        if self.app.ws_ping_interval:
            self._timers["ping"] = self.loop.call_later(self.app.ws_ping_interval, self._ping)

    def _ping(self):
        """Ping the peer; drop it if the pong does not come within ws_ping_timeout."""
        if self._gone or self.codec.state is not WebSocketState.OPEN:
            return
        self.transport.write(self.codec.send_ping(b"pixie-web"))
        if "pong" not in self._timers:
            self._timers["pong"] = self.loop.call_later(self.app.ws_ping_timeout,
                                                        self._no_pong)
        self._schedule_ping()

    def _no_pong(self):
        """No pong in time: a 1011 close, then the TCP connection is closed at once. While
        reading is paused (the handler lags behind), a pong may be waiting unread: the
        peer is not to blame, so the deadline starts again."""
        self._timers.pop("pong", None)
        if self._reading_paused:
            self._timers["pong"] = self.loop.call_later(self.app.ws_ping_timeout,
                                                        self._no_pong)
            return
        log.info("a WebSocket peer did not answer a ping within %gs: dropped",
                 self.app.ws_ping_timeout)
        if self.codec.state is WebSocketState.OPEN:
            self.transport.write(self.codec.send_close(1011, "no answer to ping"))
            self._closed_by(1011, "no answer to ping")
        self.transport.close()
        self._wake("_waiter")


# ---- HTTP/1.1 server protocol ----------------------------------------------------------------
# The asyncio glue between an HTTP11Connection, the transport, the deadlines and the queue of
# requests answered in order. What a request means is the App's (route_request, dispatch).

_DEADLINE_SETTINGS = {"header": "header_timeout", "body": "body_timeout"}
# The deadline of a connection that went idle since the server's last sweep; the sweep
# replaces it with now + keepalive_timeout.
_IDLE_SINCE_LAST_SWEEP = -1.0


class HTTPProtocol:
    """One client connection: feeds its bytes to an HTTP11Connection, queues the requests
    that come out, has the app answer them in order, writes the responses.

    An asyncio protocol by its methods (asyncio and uvloop need no base class for it)."""

    _arrived = 0.0      # when the latest bytes arrived (set by _TimedHTTPProtocol only)
    _upgrading = False  # a WebSocket handshake is being answered: read no more HTTP

    def __init__(self, server):
        self.server = server
        self.app = server.app
        self.loop = server.loop
        self.transport = None
        self.remote_addr = ""
        self._connection = HTTP11Connection(self.app, self.app._head_cache,
                                            server.parse_header_lines)
        self._current = None        # the Request whose body is being read
        self._queue = deque()       # Requests whose bodies are complete (or streamed)
        self._busy = False          # a response is being produced or written
        self._closed = False
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter = None
        self._task = None
        self._streaming = False
        self.deadline = None
        self.deadline_kind = None

    # -- asyncio.Protocol --

    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.remote_addr = peer[0] if isinstance(peer, tuple) else (peer or "")
        self.server.connections.add(self)
        self._set_deadline("header")

    def connection_lost(self, exc):
        try:
            self._lost()
        except Exception as error:      # no exception escapes a protocol callback
            self._fail(error)

    def data_received(self, data):
        if self._closed:
            return
        try:
            error = self._read_requests(data)
            if error is not None:
                self._refuse(error)
                return
            self._dispatch_next()
        except Exception as error:      # a bug costs this connection, never the server
            self._fail(error)

    def eof_received(self):
        try:
            return self._eof()
        except Exception as error:
            self._fail(error)
            return False

    def resume_writing(self):
        try:
            self._resume_writing()
        except Exception as error:
            self._fail(error)

    def pause_writing(self):
        self._writing_paused = True

    def _fail(self, error):
        """An unexpected exception while serving this connection: log it, answer 500 when
        no response is under way, and close this connection only."""
        log.error("internal error while serving a connection from %s",
                  self.remote_addr or "-", exc_info=error)
        busy, self._busy = self._busy, True        # dispatch nothing more
        self._queue.clear()
        self._current = None
        self._connection.close()
        if not busy and not self._closed:
            try:
                self._write_error_and_close(ProtocolError(500))
            except Exception:
                pass              # logged above; closing is what matters now
        self._close()

    # -- the callbacks' work --

    def _lost(self):
        self._closed = True
        self.server.connections.discard(self)
        if self._current is not None and self._current._stream is not None:
            self._current._stream.finish(ConnectionError("client disconnected"))
        if self._streaming and self._task is not None and not self._task.done():
            self._task.cancel()   # stops the body's generator at its next yield
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionError("client disconnected"))

    def _eof(self):
        # A half-closed client still gets the responses it asked for; then we close.
        if self._current is not None:
            self._refuse(ProtocolError(400, "the body ended early"))
            return False
        if not self._busy and not self._queue:
            self._close()
            return False
        self._connection.close()
        return True

    def _resume_writing(self):
        self._writing_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._dispatch_next()

    async def _drain(self):
        if self._writing_paused and not self._closed:
            self._drain_waiter = self.loop.create_future()
            await self._drain_waiter

    # -- deadlines (checked by the server's sweep; see _Server.sweep) --

    def is_idle(self):
        """True between requests: nothing buffered, queued, or being answered."""
        return not (self._busy or self._queue or self._connection.buffer or self._current)

    def _set_deadline(self, kind):
        self.deadline = time.monotonic() + getattr(self.app, _DEADLINE_SETTINGS[kind])
        self.deadline_kind = kind

    def deadline_passed(self):
        kind, self.deadline = self.deadline_kind, None
        if kind == "idle" or (kind == "header" and not self._connection.buffer):
            self._close()
        else:
            self._refuse(ProtocolError(408, "the request took too long to arrive"))

    # -- reading requests --

    def _read_requests(self, data=None):
        """Give the connection ``data`` (if any) and queue the requests its events complete,
        at most max_pipelined waiting; return the ProtocolError that ends the connection,
        if one came."""
        connection = self._connection
        while True:
            room = self.app.max_pipelined - len(self._queue)
            if data is not None:
                events, data = connection.receive(data, room), None
            elif room > 0 or connection.state is _BODY:     # a body is always read on
                events = connection.next_events(room)
            else:
                self._pause_reading()       # resumed when the queue has room again
                return None
            for event in events:
                if type(event) is RequestHead:
                    self._start_request(event)
                elif event is END_OF_MESSAGE:
                    if self._current is not None:
                        self._finish_body()
                elif type(event) is Data:
                    self._body_data(event.data)
                else:
                    return event            # a ProtocolError: the last event
            if not events or (connection.state is _AWAIT_HEAD and not connection.buffer):
                return None                 # else a body began, or the queue filled up
            if self._upgrading:     # the bytes after a WebSocket handshake wait for its answer
                return None

    def _start_request(self, head):
        """A head arrived: make its Request and have the app route it, which decides how
        (and whether) its body is read."""
        app = self.app
        server = self.server
        section = head.section
        path = head.path
        request = Request(head.method, head.raw_path,
                          # routing keeps an encoded slash apart; the request shows a "/"
                          path.replace(_ENCODED_SLASH, "/") if _ENCODED_SLASH in path else path,
                          head.query_string, head.http_version, section, b"",
                          self.remote_addr, server.scheme, head.target_host, app)
        request._server = server
        if server.stamp_requests:
            request.started = time.monotonic()
            request._arrived = self._arrived
        request._keep_alive = section.keep_alive and not server.shutting_down
        app.route_request(request, path, section.content_length, section.upgrade)
        if (section.upgrade and request.route is not None
                and request.route.websocket is not None and request._routing_outcome is None):
            request._websocket_channel = _WebSocketProtocol(self, request)
            self._upgrading = True
            self._pause_reading()   # nothing more is read as HTTP; the switch resumes reading
        has_body = section.chunked or bool(section.content_length)
        if request._routing_outcome is not None or not has_body:
            if has_body:      # refused: a body we will not read; answer, then close
                request._keep_alive = False
                self._connection.skip_body()
            self._queue.append(request)
            self.deadline = None
            return
        if section.expect_continue and not self._busy and not self._queue:
            self.transport.write(_CONTINUE)
        self._current = request
        if request.route.stream_body:
            request._stream = _BodyStream(self._stream_drained)
            self._queue.append(request)
        else:
            request._body_parts = []
        self._set_deadline("body")

    def _body_data(self, data):
        stream = self._current._stream
        if stream is not None:
            stream.feed(data)
            if stream.buffered > self.app.stream_buffer_size:
                self._pause_reading()
        else:
            self._current._body_parts.append(data)

    def _stream_drained(self, buffered):
        if buffered <= self.app.stream_buffer_size // 2:
            self._resume_reading()

    def _finish_body(self):
        request, self._current = self._current, None
        if request._stream is not None:
            request._stream.finish()
        else:
            parts = request._body_parts
            request._body = parts[0] if len(parts) == 1 else b"".join(parts)
            request._body_parts = None
            self._queue.append(request)
        self.deadline = None

    def _refuse(self, error):
        """Answer a protocol error after the requests already parsed, then close; nothing
        after it on this connection is parsed or dispatched."""
        self._connection.close()
        self.deadline = None
        current, self._current = self._current, None
        if current is not None and current._stream is not None:
            # A streaming handler (running or queued) learns it from its next read.
            current._stream.finish(HTTPError(error.status, error.message or None))
            current._keep_alive = False
        else:
            self._queue.append(error)
        self._dispatch_next()

    def _write_error_and_close(self, error):
        response = error_response(error.status, error.message or None)
        head, body, _ = serialize_head(response, "1.1", False)
        if not self._closed:
            self.transport.write(head + body)
        self._close()

    def _pause_reading(self):
        if not self._reading_paused and not self._closed:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self):
        if self._reading_paused and not self._closed:
            self._reading_paused = False
            self.transport.resume_reading()

    def _close(self):
        self._connection.close()
        self.deadline = None
        if not self._closed:
            self._closed = True
            self.transport.close()

    # -- answering, in order --

    def _dispatch_next(self):
        connection = self._connection
        while not self._closed and not self._busy and not self._writing_paused:
            if not self._queue:
                if not (connection.buffer and connection.state is _AWAIT_HEAD):
                    break
                error = self._read_requests()   # requests held back while busy or full
                if error is not None:
                    self._refuse(error)
                    return
                if not self._queue:
                    break
            request = self._queue.popleft()
            if isinstance(request, ProtocolError):
                self._write_error_and_close(request)
                return
            response = self.app.dispatch(request)
            if (type(response) is Response and type(response.body) is bytes
                    or isinstance(response, Response) and _is_in_memory(response)):
                # fast path: the body is in memory, so no task and no await
                head, body, keep_alive = serialize_head(response, request.http_version,
                                                        request._keep_alive)
                self._send(request, response.status, head, body, keep_alive)
                continue
            self._busy = True
            self._task = self.loop.create_task(self._respond_later(request, response))
            return
        if self._busy or self._closed:
            return
        state = connection.state
        if state is _CLOSED and not self._queue:
            self._close()
        elif state is _AWAIT_HEAD and not self._queue:
            if self._reading_paused:
                self._resume_reading()
            if not connection.buffer:   # idle: the next sweep starts the keep-alive clock
                self.deadline = _IDLE_SINCE_LAST_SWEEP
                self.deadline_kind = "idle"
            elif self.deadline is None or self.deadline_kind == "idle":
                self._set_deadline("header")   # a head has begun: its total deadline starts

    async def _respond_later(self, request, response):
        try:
            if not isinstance(response, Response):
                response = await response       # the app's work that had to wait
            await self._write_response_async(request, response)
        except asyncio.CancelledError:
            self._close()
            return
        except Exception:  # a bug in writing: never leave the connection hanging
            log.exception("error while writing a response")
            self._close()
            return
        finally:
            self._task = None
            self._busy = False
            self._streaming = False
        if not self._closed:
            try:
                self._dispatch_next()
            except Exception as error:
                self._fail(error)

    # -- writing --

    def _send(self, request, status, head, body, keep_alive):
        if self.transport.is_closing():
            self._closed = True     # the peer is gone: write and dispatch nothing more
        elif request.method == "HEAD" or not body:
            self.transport.write(head)
        else:
            self.transport.write(head + body)
        if self.server.access_log:
            self.server.log_access(request, status,
                                   0 if request.method == "HEAD" else len(body or b""))
        if request._after_tasks:
            _start_after_tasks(request)
        if not keep_alive:
            self._close()

    async def _write_response_async(self, request, response):
        if request._switched:           # a WebSocket, over: its protocol had the transport
            self._handed_over(request, response.status)
            return
        self._upgrading = False         # (a refused handshake: HTTP goes on, see _dispatch_next)
        if isinstance(response, FileResponse):
            response._prepare(request)
        head, body, keep_alive = serialize_head(response, request.http_version,
                                                request._keep_alive)
        if body is not None or request.method == "HEAD":
            await _close_iterator(response.body if body is None else None)
            self._send(request, response.status, head, body, keep_alive)
            return
        self.transport.write(head)
        self._streaming = True
        if isinstance(response, FileResponse):
            try:
                sent = await self._send_file(response)
            except (ConnectionError, asyncio.CancelledError):
                sent = 0
                self._close()
            finally:
                response.body.close()
        else:
            sent = await self._write_stream(response, request,
                                            chunked=request.http_version == "1.1")
        if self.server.access_log:
            self.server.log_access(request, response.status, sent)
        if request._after_tasks:
            _start_after_tasks(request)
        if not keep_alive:
            self._close()

    def switch_protocols(self, head, protocol):
        """Write a 101 ``head`` and hand the transport, with the bytes already received
        after the handshake, to ``protocol`` (a WebSocket's); return the transport."""
        transport = self.transport
        transport.write(head)
        self.deadline = None
        self._queue.clear()             # nothing after an upgrade is HTTP
        leftover = bytes(self._connection.buffer)
        self._connection.close()
        transport.set_protocol(protocol)
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        if leftover:
            self.loop.call_soon(protocol.data_received, leftover)
        return transport

    def _handed_over(self, request, status):
        """The WebSocket that took over this connection ended (its protocol closes it)."""
        self._closed = True
        self.server.connections.discard(self)
        if self.server.access_log:
            self.server.log_access(request, status, 0)
        if request._after_tasks:
            _start_after_tasks(request)

    async def _send_file(self, response):
        """Send a file body (or its range): sendfile when the transport allows it."""
        file, offset, count = response.body, response._offset, response._size
        sent = 0
        if self.server.use_sendfile and count:
            try:
                sent = await self.loop.sendfile(self.transport, file, offset, count)
                return sent
            except (NotImplementedError, AttributeError, RuntimeError, TypeError):
                pass       # this loop/transport has no sendfile: copy through the thread pool
        file.seek(offset)
        while sent < count and not self._closed:
            chunk = await self.loop.run_in_executor(
                self.server.thread_pool(), file.read, min(_FILE_CHUNK, count - sent))
            if not chunk:
                break
            self.transport.write(chunk)
            sent += len(chunk)
            await self._drain()
        return sent

    async def _write_stream(self, response, request, chunked):
        """Send an iterable / async iterable / file body as it is produced.

        One chunk per turn of the event loop: other connections are served between chunks
        even when the body never suspends (a sync generator, or an async one that never
        awaits), and a client that goes away stops the body at its next chunk."""
        in_thread = request.route is not None and request.route.route_type is RouteType.thread
        chunks = _body_chunks(response.body, self.server.thread_pool, in_thread)
        sent = 0
        try:
            async for chunk in chunks:
                if self._closed:
                    break
                sent += len(chunk)
                if chunked:
                    self.transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    self.transport.write(chunk)
                await self._drain()
                await asyncio.sleep(0)     # let other connections (and signals) in
            else:
                if chunked and not self._closed:
                    self.transport.write(b"0\r\n\r\n")
                return sent
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            # the response has started: all we can do is log and cut the connection
            log.exception("error while streaming a response body")
        finally:
            await chunks.aclose()          # closes the body: its finally blocks run
        self._close()
        return sent


class _TimedHTTPProtocol(HTTPProtocol):
    """HTTPProtocol in debug mode: notes when bytes arrive (Server-Timing's parse span),
    which the usual protocol does not pay for."""

    def data_received(self, data):
        self._arrived = time.monotonic()
        super().data_received(data)


_EXHAUSTED = object()


def _start_after_tasks(request):
    """Start the tasks a handler left for after its response (request.add_task)."""
    for function, args, kwargs in request._after_tasks:
        try:
            request.app.add_task(function, *args, **kwargs)
        except Exception:
            log.exception("could not start a task after the response")
    request._after_tasks = None


def _is_in_memory(response):
    """True when the body is already in memory (the synchronous fast path can send it)."""
    body = response.body
    return (type(body) is bytes or body is None or type(body) is str) and not isinstance(
        response, FileResponse)


def _close_body(body):
    close = getattr(body, "close", None)
    if close is not None and not isinstance(body, (bytes, str)):
        try:
            close()
        except Exception:
            log.exception("error while closing a response body")


async def _body_chunks(body, thread_pool, in_thread):
    """The non-empty chunks of a streamed body, as bytes, one at a time.

    A binary file, and any iterator when ``in_thread`` is true, is read in the thread pool
    (``thread_pool()`` gives it), so a body that blocks never holds the event loop. However
    this generator ends, the body is closed (its ``finally`` blocks run): in the thread pool
    when it was read there."""
    if _is_binary_file(body):
        iterator, in_thread = _iter_file(body), True
    elif hasattr(body, "__aiter__"):
        iterator = body.__aiter__()
    else:
        iterator = iter(body)
    running = None                 # the next() under way in the thread pool
    try:
        while True:
            if hasattr(iterator, "__anext__"):
                try:
                    chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    return
            elif in_thread:
                running = thread_pool().submit(next, iterator, _EXHAUSTED)
                chunk = await asyncio.wrap_future(running)
            else:
                chunk = next(iterator, _EXHAUSTED)
            if chunk is _EXHAUSTED:
                return
            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8")
            if chunk:
                yield chunk
    finally:
        if not in_thread:
            await _close_iterator(iterator)
            _close_body(body)
        elif running is not None and not running.done():
            # stopped while a chunk is being produced: a generator cannot be closed while it
            # runs, so its thread closes it as soon as that chunk is done
            running.add_done_callback(lambda _: _close_bodies(iterator, body))
        else:
            try:
                closing = thread_pool().submit(_close_bodies, iterator, body)
            except RuntimeError:       # the thread pool is shut down: the server is stopping
                _close_bodies(iterator, body)
            else:
                await asyncio.wrap_future(closing)


def _close_bodies(*bodies):
    for body in bodies:
        _close_body(body)


async def _close_iterator(iterator):
    if iterator is None:
        return
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.exception("error while closing an async generator")
        return
    _close_body(iterator)


# ---- ASGI adapter ----------------------------------------------------------------------------
# An App is an ASGI 3 application (``uvicorn app:app``): a front end of the same dispatch core
# as the built-in server (App.route_request, App.dispatch, response_head). The pools, the
# startup and shutdown hooks live in a _Server started at lifespan startup (or at the first
# request when the ASGI server sends no lifespan) and stopped at lifespan shutdown.

class _ASGIBody:
    """The body of a ``stream_body=True`` request under ASGI: chunks pulled from
    ``receive()`` as the handler reads them, within ``max_body_size``."""

    def __init__(self, receive, max_body_size):
        self._receive = receive
        self._max_body_size = max_body_size
        self._size = 0
        self._more = True

    def __aiter__(self):
        return self

    async def __anext__(self):
        while self._more:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._more = False
                raise ConnectionError("client disconnected")
            self._more = message.get("more_body", False)
            chunk = message.get("body", b"")
            self._size += len(chunk)
            if self._size > self._max_body_size:
                self._more = False
                raise HTTPError(413, f"the body is larger than max_body_size "
                                     f"({self._max_body_size} bytes)")
            if chunk:
                return chunk
        raise StopAsyncIteration


async def _asgi_read_body(request, receive, max_body_size):
    """Read a whole body from ``receive()``; a 413 outcome when it grows past the limit;
    None when the client went away."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body_size:
            request._routing_outcome = HTTPError(
                413, f"the body is larger than max_body_size ({max_body_size} bytes)")
            return b""
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _asgi_request(app, host, scope):
    """A routed Request from an ASGI ``http`` or ``websocket`` scope."""
    pairs = tuple((name.decode("latin-1").lower(), value.decode("latin-1"))
                  for name, value in scope.get("headers") or ())
    websocket = scope["type"] == "websocket"
    method = "GET" if websocket else scope["method"]
    raw_path = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
    raw_path_text, routing_path, _, _ = split_target(method, raw_path)
    query = scope.get("query_string", b"").decode("latin-1")
    client = scope.get("client")
    request = Request(method, raw_path_text, routing_path.replace(_ENCODED_SLASH, "/"), query,
                      scope.get("http_version", "1.1"), _HeaderSection(pairs=pairs), b"",
                      client[0] if client else "", scope.get("scheme", "http"), None, app)
    request._server = host
    if websocket:
        if app._trusted_networks:
            _apply_proxy_headers(request, app._trusted_networks)
        offer = WebSocketOffer(None, scope.get("subprotocols") or [], [])
        if not app._route_websocket(request, routing_path, offer):
            request._routing_outcome = HTTPError(404)
        return request
    content_length = None
    for name, value in pairs:
        if name == "content-length" and _DIGITS_RE.fullmatch(value.encode("latin-1")):
            content_length = int(value)
    app.route_request(request, routing_path, content_length)
    return request


def _announces_body(request):
    """False when an HTTP/1 request's headers say it has no body (no Content-Length above 0,
    no Transfer-Encoding): then it is not waited for. HTTP/2 and 3 say so only by frames."""
    if request.http_version not in ("1.1", "1.0"):
        return True
    for name, value in request._header_pairs:
        if name == "transfer-encoding" or (name == "content-length" and value.strip() != "0"):
            return True
    return False


async def _asgi_http(app, scope, receive, send):
    host = await app._asgi_host_started()
    try:
        request = _asgi_request(app, host, scope)
    except ProtocolError as error:           # a target the server let through but we refuse
        response = error_response(error.status, error.message or None)
        return await _asgi_send(None, response, send, host)
    if request._routing_outcome is None and request.route.stream_body:
        request._stream = _ASGIBody(receive, app.max_body_size)
    elif request._routing_outcome is None and _announces_body(request):
        body = await _asgi_read_body(request, receive, app.max_body_size)
        if body is None:
            return                           # the client went away before its body was in
        request._body = body
    response = app.dispatch(request)
    if not isinstance(response, Response):
        response = await response
    await _asgi_send(request, response, send, host, receive)
    if request._after_tasks:
        _start_after_tasks(request)


class _ASGIWebSocketChannel:
    """A WebSocket's channel under an ASGI server, which does the framing (and applies its
    own message size limit and compression)."""

    def __init__(self, receive, send):
        self._receive = receive
        self._send = send
        self.ws = None

    async def accept(self, ws, subprotocol, extra):
        self.ws = ws
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol,
                          "headers": [(name.lower().encode("latin-1"),
                                       value.encode("latin-1", "replace"))
                                      for name, value in extra]})

    async def receive(self):
        ws = self.ws
        if ws.close_code is None:
            message = await self._receive()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                return text if text is not None else message.get("bytes") or b""
            if message["type"] == "websocket.disconnect":
                ws.close_code = message.get("code", 1005)
                ws.close_reason = message.get("reason") or ""
        raise _closed_error(ws)

    async def send(self, data):
        if self.ws.close_code is not None:
            raise _closed_error(self.ws)
        try:
            await self._send({"type": "websocket.send",
                              "text" if type(data) is str else "bytes": data})
        except OSError:         # some servers raise once the client is gone
            self.ws.close_code = _ABNORMAL_CLOSURE
            raise _closed_error(self.ws) from None

    async def close(self, code, reason):
        _close_payload(code, reason)       # the same checks as the built-in server's
        self.ws.close_code, self.ws.close_reason = code, reason
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except OSError:
            pass


async def _asgi_websocket(app, scope, receive, send):
    host = await app._asgi_host_started()
    if (await receive())["type"] != "websocket.connect":
        return
    try:
        request = _asgi_request(app, host, scope)
    except ProtocolError as error:
        request, response = None, error_response(error.status, error.message or None)
    else:
        request._websocket_channel = _ASGIWebSocketChannel(receive, send)
        response = app.dispatch(request)
        if not isinstance(response, Response):
            response = await response
    if request is not None and request._switched:
        if request._after_tasks:
            _start_after_tasks(request)
        return
    # Refused before the handshake completed: the HTTP answer where the server can send one
    # (the websocket.http.response extension), else a close, which it answers with 403.
    if "websocket.http.response" in scope.get("extensions", {}):
        head = response_head(response)
        await send({"type": "websocket.http.response.start", "status": head.status,
                    "headers": [(name.encode("latin-1"), value.encode("latin-1", "replace"))
                                for name, value in head.fields]})
        await send({"type": "websocket.http.response.body", "body": head.body or b""})
    else:
        await send({"type": "websocket.close", "code": 1000})


async def _asgi_send(request, response, send, host, receive=None):
    """Send a Response as ASGI messages; a streamed body is closed when the client goes."""
    if isinstance(response, FileResponse):
        response._prepare(request)
    head = response_head(response)
    headers = [(name.encode("latin-1"), value.encode("latin-1", "replace"))
               for name, value in head.fields]
    if head.length is not None:
        headers.append((b"content-length", b"%d" % head.length))
    await send({"type": "http.response.start", "status": head.status, "headers": headers})
    if head.body is not None or (request is not None and request.method == "HEAD"):
        if head.body is None:
            await _close_iterator(response.body)
        await send({"type": "http.response.body",
                    "body": b"" if request is not None and request.method == "HEAD"
                    else bytes(head.body)})
        return
    if isinstance(response, FileResponse):
        chunks = _file_range_chunks(response, host.thread_pool)
    else:
        in_thread = (request is not None and request.route is not None
                     and request.route.route_type is RouteType.thread)
        chunks = _body_chunks(response.body, host.thread_pool, in_thread)
    # Some servers make send() a no-op once the client is gone: a disconnect is watched for
    # (when the request body has been read) and stops the body at its next chunk.
    body_read = request is None or not isinstance(request._stream, _ASGIBody) \
        or not request._stream._more
    gone = (asyncio.ensure_future(_asgi_disconnect(receive))
            if body_read and receive is not None else None)
    try:
        async for chunk in chunks:
            if gone is not None and gone.done():
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0)           # one chunk per turn of the loop
        await send({"type": "http.response.body", "body": b""})
    except OSError:
        pass                                 # the client went away: the body is closed below
    finally:
        if gone is not None:
            gone.cancel()
        await chunks.aclose()


async def _asgi_disconnect(receive):
    while (await receive())["type"] != "http.disconnect":
        pass


async def _file_range_chunks(response, thread_pool):
    """The bytes of a prepared FileResponse (its range), read in the thread pool."""
    file, remaining = response.body, response._size
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(thread_pool(), file.seek, response._offset)
        while remaining > 0:
            chunk = await loop.run_in_executor(thread_pool(), file.read,
                                               min(_FILE_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
    finally:
        file.close()


async def _asgi_lifespan(app, receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await app._asgi_host_started()
            except Exception as error:
                log.exception("startup failed")
                await send({"type": "lifespan.startup.failed", "message": str(error)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            host, app._asgi_host = app._asgi_host, None
            if host is not None:
                await host.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


# ---- WSGI adapter ----------------------------------------------------------------------------
# ``app.wsgi`` is a WSGI application (gunicorn, waitress, granian --interface wsgi): another
# front end of the same dispatch core. Sync routes run in the server's thread; async work
# (async handlers, hooks, thread and pool routes) runs on one event loop per process, which
# the adapter starts in a thread of its own at the first request and stops at exit.

_WSGI_CHUNK = 64 * 1024


class _WSGIAdapter:
    """The WSGI callable of one App (``app.wsgi``)."""

    def __init__(self, app):
        self.app = app
        self._lock = threading.Lock()
        self._pid = None            # the process the loop was started in (servers fork)
        self.loop = None
        self.host = None

    def _started(self):
        """The event loop and the started host of this process: started once, at first use."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    loop = _new_event_loop()
                    threading.Thread(target=loop.run_forever, daemon=True,
                                     name="pixie-web-wsgi-loop").start()
                    host = self.app._new_host(loop)
                    try:
                        asyncio.run_coroutine_threadsafe(
                            host.start(executor=self.app.executor), loop).result()
                    except BaseException:         # a startup hook failed: tried again at
                        loop.call_soon_threadsafe(loop.stop)     # the next request
                        raise
                    self.loop, self.host, self._pid = loop, host, os.getpid()
                    import atexit
                    atexit.register(self._stop, loop, host)
        return self.loop, self.host

    @staticmethod
    def _stop(loop, host):
        try:
            asyncio.run_coroutine_threadsafe(host.stop(), loop).result(timeout=30)
        except Exception:
            log.exception("error while stopping the WSGI adapter")
        loop.call_soon_threadsafe(loop.stop)

    def _on_loop(self, awaitable):
        return asyncio.run_coroutine_threadsafe(awaitable, self.loop).result()

    def __call__(self, environ, start_response):
        app = self.app
        loop, host = self._started()
        try:
            request = self._request(environ, host)
        except ProtocolError as error:
            return self._respond(environ, start_response, None,
                                 error_response(error.status, error.message or None))
        if request._routing_outcome is None:
            body = self._read_body(environ, request)
            if request._routing_outcome is None:
                request._body = body
                if request.route.stream_body:
                    request._stream = _BodyStream()
                    if body:
                        request._stream.feed(body)
                    request._stream.finish()
        if request.route is not None and request._routing_outcome is None \
                and request.route.route_type is not RouteType.asnc:
            response = app.dispatch(request)        # a sync handler runs in this thread
        else:
            response = self._on_loop(_dispatch_now(app, request))
        if not isinstance(response, Response):
            response = self._on_loop(response)       # the work that had to wait
        body = self._respond(environ, start_response, request, response)
        if request._after_tasks:                     # (the body is sent after this returns)
            _start_after_tasks(request)
        return body

    def _request(self, environ, host):
        """A routed Request from a WSGI environ."""
        app = self.app
        method = environ["REQUEST_METHOD"]
        # The target as sent, where the server gives it (gunicorn RAW_URI, waitress
        # REQUEST_URI): an encoded slash stays one path segment, as in the built-in server.
        # Else PATH_INFO, the decoded path's bytes as latin-1 (PEP 3333), quoted again.
        raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
        if raw_uri.startswith("/") and not environ.get("SCRIPT_NAME"):
            raw_target = raw_uri.partition("?")[0].encode("latin-1")
        else:
            path_bytes = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode(
                "latin-1")
            raw_target = quote(path_bytes or b"/", safe="/:@!$&'()*+,;=-._~").encode("ascii")
        raw_path, routing_path, _, _ = split_target(method, raw_target)
        pairs = []
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                pairs.append((key[5:].replace("_", "-").lower(), value))
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                pairs.append((key.replace("_", "-").lower(), value))
        request = Request(method, raw_path, routing_path.replace(_ENCODED_SLASH, "/"),
                          environ.get("QUERY_STRING", ""),
                          environ.get("SERVER_PROTOCOL", "HTTP/1.1").rpartition("/")[2],
                          _HeaderSection(pairs=tuple(pairs)), b"",
                          environ.get("REMOTE_ADDR", ""), environ.get("wsgi.url_scheme", "http"),
                          None, app)
        request._server = host
        length = environ.get("CONTENT_LENGTH", "")
        app.route_request(request, routing_path,
                          int(length) if _DIGITS_RE.fullmatch(length.encode("latin-1")) else None)
        return request

    def _read_body(self, environ, request):
        """wsgi.input, read within max_body_size (a 413 outcome beyond it)."""
        limit = self.app.max_body_size
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH", "")
        if _DIGITS_RE.fullmatch(length.encode("latin-1")):
            return stream.read(int(length)) if int(length) else b""
        if not environ.get("wsgi.input_terminated"):
            return b""                  # no length and no end marker: no body (PEP 3333)
        parts, size = [], 0
        while True:
            chunk = stream.read(_WSGI_CHUNK)
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > limit:
                request._routing_outcome = HTTPError(
                    413, f"the body is larger than max_body_size ({limit} bytes)")
                return b""
            parts.append(chunk)

    def _respond(self, environ, start_response, request, response):
        if isinstance(response, FileResponse):
            response._prepare(request)
        head = response_head(response)
        headers = [(name, value) for name, value in head.fields]
        if head.length is not None:
            headers.append(("Content-Length", str(head.length)))
        start_response(f"{head.status} {STATUS_REASONS.get(head.status, 'Unknown')}", headers)
        if environ["REQUEST_METHOD"] == "HEAD" or head.body is not None:
            if head.body is None:
                self._on_loop(_close_iterator(response.body))
                return []
            return [] if environ["REQUEST_METHOD"] == "HEAD" else [bytes(head.body)]
        if isinstance(response, FileResponse):
            file, offset, size = response.body, response._offset, response._size
            file.seek(offset)
            wrapper = environ.get("wsgi.file_wrapper")
            if wrapper is not None and offset == 0 and size == os.fstat(file.fileno()).st_size:
                return wrapper(file, _WSGI_CHUNK)
            return _FileRange(file, size)
        body = response.body
        if hasattr(body, "__aiter__"):
            return _LoopIterable(_body_chunks(body, self.host.thread_pool, False), self.loop)
        if _is_binary_file(body):
            return _FileRange(body, float("inf"))
        return _EncodedIterable(body)     # read in this thread, whatever the route type


async def _dispatch_now(app, request):
    return app.dispatch(request)


class _EncodedIterable:
    """A sync body as a WSGI iterable: str chunks encoded, close() passed on (PEP 3333)."""

    def __init__(self, body):
        self._body = body
        self._iterator = iter(body)

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            chunk = next(self._iterator)
            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8")
            if chunk:
                return bytes(chunk)

    def close(self):
        _close_bodies(self._iterator, self._body)


class _LoopIterable:
    """An async body as a WSGI iterable: each chunk produced on the adapter's event loop,
    close() closing it there."""

    def __init__(self, chunks, loop):
        self._chunks = chunks
        self._loop = loop

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return asyncio.run_coroutine_threadsafe(self._chunks.__anext__(), self._loop).result()
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self):
        asyncio.run_coroutine_threadsafe(self._chunks.aclose(), self._loop).result()


class _FileRange:
    """``size`` bytes of a file from its current position, then the file is closed."""

    def __init__(self, file, size):
        self._file = file
        self._remaining = size

    def __iter__(self):
        return self

    def __next__(self):
        if self._remaining <= 0:
            raise StopIteration
        chunk = self._file.read(min(_WSGI_CHUNK, self._remaining))
        if not chunk:
            raise StopIteration
        self._remaining -= len(chunk)
        return chunk

    def close(self):
        self._file.close()


# ---- Route-type runners ----------------------------------------------------------------------
# How each route type runs its handler: _RUNNERS[route_type](app, route) gives, once per route,
# ``run(request)``, which returns the handler's value, or a coroutine when the value is not
# ready yet (a thread, the pool, an async handler that suspended). App._compose_route wraps
# hooks and middleware around it.

def _sync_runner(app, route):
    handler = route.handler

    def run(request):
        params = request.path_params
        return handler(request, **params) if params else handler(request)
    return run


def _async_runner(app, route):
    handler = route.handler

    def run(request):
        params = request.path_params
        coroutine = handler(request, **params) if params else handler(request)
        if type(coroutine) is not CoroutineType:
            if inspect.isawaitable(coroutine):
                return _within_timeout(coroutine, app._handler_timeout(route))
            return coroutine                    # an async generator: streamed
        # Most async handlers finish without ever waiting: run the first step here and
        # skip the task; one that suspends is resumed in a task (_resume), with a timeout.
        context = contextvars.copy_context()
        try:
            yielded = context.run(coroutine.send, None)
        except StopIteration as finished:
            return finished.value
        return _within_timeout(_resume(coroutine, yielded, context),
                               app._handler_timeout(route))
    return run


def _thread_runner(app, route):
    handler = route.handler

    def run(request):
        return _in_thread(request._server, functools.partial(
            handler, request, **request.path_params), app._handler_timeout(route))
    return run


def _pool_runner(app, route):
    handler = route.handler

    def run(request):
        server = request._server
        if server.pool is None:       # workers=0, or a process that cannot start workers
            return _in_thread(server, functools.partial(
                handler, request, **request.path_params), app._handler_timeout(route))
        return _in_pool(server.pool, handler, request, app._handler_timeout(route))
    return run


_RUNNERS = {
    RouteType.sync: _sync_runner,
    RouteType.asnc: _async_runner,
    RouteType.thread: _thread_runner,
    RouteType.pool: _pool_runner,
}


def _websocket_runner(app, route):
    """A WebSocket route's run: the handler with its ``ws``, for the connection's life. An
    error (HTTPError or other) before the handshake completed is answered over HTTP, like
    any handler's; a handler that returns without accepting (or closes first) refuses with
    403. Then the close: 1000 when the handler returns, 1011 when it raises (logged)."""
    handler = route.handler
    preferred = route.websocket.subprotocols

    async def run(request):
        channel = request._websocket_channel
        ws = WebSocket(request, channel, request._websocket_offer.subprotocols, preferred)
        try:
            await handler(request, ws, **request.path_params)
        except WebSocketClosed:
            pass                # read or written after the close: the handler's way to end
        except Exception as error:
            if not ws._accepted:
                raise
            log.error("unhandled exception in WebSocket handler %s", request.raw_path,
                      exc_info=error)
            if not ws.closed:
                await channel.close(1011, "")
        if not ws._accepted:
            return error_response(403, "the WebSocket was refused")
        await ws.close(1000)
        return Response(None, 101)      # the front end writes no HTTP response for it
    return run


def _bound(plan, run):
    """``run`` after a route's _BindingPlan: with the handler's typed arguments among the
    path parameters, or, when any value is missing or invalid, a 422 listing every error —
    before anything is scheduled, so a pool worker never sees an invalid request."""
    def bound(request):
        values, errors = plan.bind(request)
        if errors:
            return JSONResponse({"detail": errors}, 422)
        request.path_params = {**request.path_params, **values}
        return run(request)
    return bound


def _timed(route, run, threshold):
    """``run``, timed: the handler's start and end go on the request (for Server-Timing),
    and a run longer than ``threshold`` seconds (if not None) is logged."""
    def timed(request):
        request._handler_started = started = time.monotonic()
        try:
            value = run(request)
        except BaseException:
            _handler_ended(request, route, started, threshold)
            raise
        if type(value) is CoroutineType:
            return _timed_later(value, request, route, started, threshold)
        _handler_ended(request, route, started, threshold)
        return value
    return timed


async def _timed_later(pending, request, route, started, threshold):
    try:
        return await pending
    finally:
        _handler_ended(request, route, started, threshold)


def _handler_ended(request, route, started, threshold):
    request._handler_ended = ended = time.monotonic()
    if threshold is not None and ended - started > threshold:
        # raw_path is validated visible ASCII: request data cannot forge log lines
        log.warning("slow handler: %s %s took %.3fs (route %s, %s%s)", request.method,
                    request.raw_path, ended - started, route.path, route.route_type.name,
                    f", pool worker pid {request._worker_pid}" if request._worker_pid else "")


def _server_timing(request, now):
    """The Server-Timing value of debug mode: parse (the head's bytes arrived → the request
    was made), queue (→ its handler started: body, pipelined requests before it), handler,
    write (→ the response is ready to serialise: conversion, hooks, middleware). Spans a
    front end did not measure are left out."""
    spans = []
    if request._arrived and request.started:
        spans.append(("parse", request.started - request._arrived))
    if request.started and request._handler_started:
        spans.append(("queue", request._handler_started - request.started))
    if request._handler_ended:
        spans.append(("handler", request._handler_ended - request._handler_started))
        spans.append(("write", now - request._handler_ended))
    return ", ".join(f"{name};dur={max(0.0, seconds) * 1000:.3f}" for name, seconds in spans)


def _answer_routing_outcome(request):
    """The runner of a request answered when its head arrived (404, 405, 413, OPTIONS...)."""
    outcome = request._routing_outcome
    if isinstance(outcome, Response):
        return outcome
    raise outcome


async def _within_timeout(awaitable, timeout):
    try:
        async with asyncio.timeout(timeout):
            return await awaitable
    except TimeoutError:
        raise HTTPError(503, "the handler took too long") from None


async def _in_thread(server, call, timeout):
    try:
        return await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(server.thread_pool(), call), timeout)
    except TimeoutError:
        raise HTTPError(503, "the handler took too long") from None


async def _in_pool(pool, handler, request, timeout):
    try:
        return await pool.call(handler, request, request.path_params, timeout)
    except _PoolTimeout:
        raise HTTPError(503, "the handler took too long") from None
    except _WorkerStopped:
        raise HTTPError(503, "a worker process stopped; please retry") from None


async def _apply_in_pool(host, function, args, kwargs, timeout):
    """in_pool on ``host`` (a started _Server): its process pool, else its thread pool."""
    if asyncio.current_task() is None:      # an async handler's eager first step: the
        return await asyncio.ensure_future(  # timeouts below need a task
            _apply_in_pool(host, function, args, kwargs, timeout))
    name = getattr(function, "__qualname__", repr(function))
    if not _is_module_level_function(function):
        raise TypeError(f"in_pool: {name} cannot run in a worker process, which imports it by "
                        f"name: give a module-level function (no lambda, closure, nested "
                        f"function or method)")
    try:
        pool = await host.started_pool()
        if pool is None:            # workers=0, or a process that cannot start workers
            async with asyncio.timeout(timeout):
                return await asyncio.get_running_loop().run_in_executor(
                    host.thread_pool(), functools.partial(function, *args, **kwargs))
        return await pool.apply(function, args, kwargs, timeout)
    except (_PoolTimeout, TimeoutError):
        raise TimeoutError(f"in_pool: {name} took longer than {timeout} s") from None
    except _WorkerStopped:
        raise RuntimeError(f"in_pool: the worker process running {name} stopped") from None


#: The started hosts (_Server) of this process, latest last: in_pool uses the latest.
_running_hosts = []


async def in_pool(function, /, *args, timeout=None, **kwargs):
    """``await in_pool(func, *args, **kwargs)``: run a module-level function in the process
    pool of the app this process serves (see also ``app.in_pool``) and return its result;
    its exceptions are raised here, and TimeoutError after ``timeout`` seconds (the worker
    is then replaced). For CPU-heavy work in any ``async def`` handler, WebSocket handlers
    included. Where there is no pool (``workers=0``), it runs in the thread pool."""
    if not _running_hosts:
        raise RuntimeError("in_pool needs a running app (run(), TestClient, or an ASGI or "
                           "WSGI server that has started it)")
    return await _apply_in_pool(_running_hosts[-1], function, args, kwargs, timeout)


async def _foreign_future(future):
    """Wait for a future-like object that is no asyncio.Future (asyncio.Task accepts them:
    anything with add_done_callback), cancelling it when the wait is cancelled."""
    waiter = asyncio.get_running_loop().create_future()
    future.add_done_callback(lambda _: waiter.done() or waiter.set_result(None))
    try:
        await waiter
    except BaseException:
        future.cancel()
        raise


async def _resume(coroutine, yielded, context):
    """Drive an async handler whose first step already ran, as an asyncio.Task would: wait
    for the future it yielded, then step it again, always in its own context."""
    while True:
        step, argument = coroutine.send, None
        try:
            if yielded is None:
                await asyncio.sleep(0)               # a bare yield: one turn of the loop
            elif getattr(yielded, "_asyncio_future_blocking", None) is not None:
                yielded._asyncio_future_blocking = False
                if isinstance(yielded, asyncio.Future):
                    await yielded
                else:
                    await _foreign_future(yielded)   # future-like, e.g. granian's receive()
            else:
                step, argument = coroutine.throw, RuntimeError(
                    f"an async handler yielded {yielded!r}, not an asyncio future")
        except BaseException as error:
            if yielded is None or not yielded.done():
                step, argument = coroutine.throw, error    # interrupted (cancelled, timed out)
            # else the future failed or was cancelled: the coroutine reads that itself
        try:
            yielded = context.run(step, argument)
        except StopIteration as finished:
            return finished.value


async def _run_middleware(middleware, call_next, request):
    async def next_step(request):
        return await call_next(request)
    return to_response(await middleware(request, next_step))


async def _maybe_await(value):
    return await value if inspect.isawaitable(value) else value


# ---- Proxy headers ---------------------------------------------------------------------------
# Behind a reverse proxy the peer is the proxy: the client's address, the scheme and the host
# it asked for come in Forwarded (RFC 7239) or X-Forwarded-For/-Proto/-Host, and are believed
# only from a peer in App(trusted_proxies=...). The client is the rightmost address that is
# not a trusted proxy (a client can prepend anything; only what trusted hops appended counts).

_FORWARDED_PAIR_RE = re.compile(   # forwarded-pair = token "=" value (token / quoted-string)
    r'[ \t]*(' + _TOKEN.decode() + r')=("(?:[^"\\]|\\.)*"|[^;,]*)[ \t]*')


def _proxy_networks(proxies):
    import ipaddress
    networks = []
    for proxy in proxies or ():
        networks.append("unix" if proxy == "unix" else ipaddress.ip_network(proxy, strict=False))
    return tuple(networks)


def _is_trusted(address, networks):
    if not address:
        return "unix" in networks
    import ipaddress
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(network != "unix" and ip in network for network in networks)


def _forwarded_elements(value):
    """The elements of Forwarded header values, each a dict of its lower-cased parameters."""
    elements = []
    for element in value.split(","):
        pairs = {}
        for part in element.split(";"):
            match = _FORWARDED_PAIR_RE.fullmatch(part)
            if match is not None:
                name, token = match.groups()
                if token.startswith('"'):
                    token = re.sub(r"\\(.)", r"\1", token[1:-1])
                pairs[name.lower()] = token
        elements.append(pairs)
    return elements


def _node_address(node):
    """The address of a Forwarded ``for=`` node ("[2001:db8::1]:4711" -> "2001:db8::1")."""
    if node.startswith("["):
        return node[1:node.find("]")] if "]" in node else ""
    return node.rsplit(":", 1)[0] if node.count(":") == 1 else node


def _apply_proxy_headers(request, networks):
    """Take remote_addr, scheme and host from the proxy headers when the peer is trusted."""
    if not _is_trusted(request.remote_addr, networks):
        return
    forwarded = ", ".join(value for name, value in request._header_pairs if name == "forwarded")
    if forwarded:
        elements = _forwarded_elements(forwarded)
        hops = [_node_address(element.get("for", "")) for element in elements]
        last = elements[-1] if elements else {}
        proto, host = last.get("proto"), last.get("host")
    else:
        hops = [hop.strip() for name, value in request._header_pairs
                if name == "x-forwarded-for" for hop in value.split(",")]
        proto = host = None
        for name, value in request._header_pairs:
            if name == "x-forwarded-proto":
                proto = value.split(",")[-1].strip()
            elif name == "x-forwarded-host":
                host = value.split(",")[-1].strip()
    for hop in reversed(hops):
        if hop and not _is_trusted(hop, networks):
            request.remote_addr = hop
            break
    else:
        if hops and hops[0]:
            request.remote_addr = hops[0]
    if proto and proto.lower() in ("http", "https"):
        request.scheme = proto.lower()
    if host and _HOST_RE.fullmatch(host):
        request._host = host


# ---- Background tasks ------------------------------------------------------------------------
# app.add_task(...) runs a function beside the requests (sync ones in the thread pool, async
# ones on the event loop), with retries and a bound on how many run at once; @app.every(s)
# runs one on a timer. Each serving process (built-in server, TestClient, ASGI or WSGI host)
# has its own _TaskRunner, started with its host and stopped with it.

_TASK_BACKOFF = 0.1        # seconds before the first retry; doubled each time ...
_TASK_BACKOFF_MAX = 30.0   # ... up to this, times a random factor in [0.5, 1] (jitter)


class TaskHandle:
    """A background task scheduled by ``app.add_task``: ``done()``, ``result(timeout)``
    (its return value, or its last exception), ``cancel()``. Usable from any thread."""

    def __init__(self, name):
        self.name = name
        self._future = concurrent.futures.Future()
        self._task = None
        self._loop = None

    def done(self):
        return self._future.done()

    def result(self, timeout=None):
        return self._future.result(timeout)

    def cancel(self):
        """Cancel the task (a sync function already running in a thread finishes anyway)."""
        if self._future.done():
            return False
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        return True

    def __repr__(self):
        state = "done" if self.done() else "pending"
        return f"<TaskHandle {self.name} {state}>"


class _TaskRunner:
    """The background tasks of one serving process."""

    def __init__(self, host, max_tasks):
        self.host = host
        self.loop = host.loop
        self._slots = asyncio.Semaphore(max_tasks)
        self._tasks = set()
        self._timers = []
        self.outcomes = {"succeeded": 0, "failed": 0, "cancelled": 0}   # (metrics)

    def submit(self, function, args, kwargs, retries=0, timeout=None):
        handle = TaskHandle(getattr(function, "__qualname__", repr(function)))

        def start():
            task = self.loop.create_task(
                self._run(handle, function, args, kwargs, retries, timeout))
            handle._task, handle._loop = task, self.loop
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        try:
            on_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            start()
        else:                                # a thread route, a WSGI thread, any thread
            self.loop.call_soon_threadsafe(start)
        return handle

    async def _call(self, function, args, kwargs, timeout):
        async with asyncio.timeout(timeout):
            if _is_coroutine_function(function):
                return await function(*args, **kwargs)
            return await self.loop.run_in_executor(
                self.host.thread_pool(), functools.partial(function, *args, **kwargs))

    async def _run(self, handle, function, args, kwargs, retries, timeout):
        import random
        try:
            async with self._slots:              # at most max_tasks at once; the rest wait
                for attempt in range(retries + 1):
                    try:
                        result = await self._call(function, args, kwargs, timeout)
                    except Exception as error:
                        if attempt == retries:
                            log.error("background task %s failed (attempt %d of %d)",
                                      handle.name, attempt + 1, retries + 1, exc_info=error)
                            handle._future.set_exception(error)
                            self.outcomes["failed"] += 1
                            return
                        delay = min(_TASK_BACKOFF * 2 ** attempt, _TASK_BACKOFF_MAX) \
                            * random.uniform(0.5, 1.0)
                        log.warning("background task %s failed (attempt %d of %d): %r; "
                                    "retrying in %.2fs", handle.name, attempt + 1,
                                    retries + 1, error, delay)
                        await asyncio.sleep(delay)
                    else:
                        handle._future.set_result(result)
                        self.outcomes["succeeded"] += 1
                        return
        except asyncio.CancelledError:
            handle._future.cancel()
            self.outcomes["cancelled"] += 1
            raise

    def start_timers(self, apps, first_process=True):
        """Start the apps' periodic tasks: all of them in the first (or only) serving
        process, elsewhere only those marked each_process."""
        for app in apps:
            for seconds, function, each_process in app._periodic:
                if first_process or each_process:
                    self._timers.append(self.loop.create_task(self._every(seconds, function)))

    async def _every(self, seconds, function):
        """Run ``function`` every ``seconds``; a run still going when the next is due makes
        that one skipped, not doubled."""
        running = None
        while True:
            await asyncio.sleep(seconds)
            if running is not None and not running.done():
                log.warning("periodic task %s skipped: its previous run is still going",
                            getattr(function, "__qualname__", function))
                continue
            running = self.submit(function, (), {})

    async def stop(self, timeout):
        """Stop the timers, wait up to ``timeout`` for the tasks, then cancel the rest."""
        for timer in self._timers:
            timer.cancel()
        pending = set(self._tasks)
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        for task in pending:
            task.cancel()
        unfinished = [task for task in pending if not task.done()]
        if unfinished:
            await asyncio.wait(unfinished, timeout=_CANCEL_GRACE)


# ---- Supervisor: processes=N and reload ------------------------------------------------------
# run(processes=N) and run(reload=True) turn the process that called run() into a supervisor:
# it binds the listening sockets, then starts each serving child by running the program's own
# command line again (sys.orig_argv) with _SUPERVISED in its environment. In a child, run()
# finds that variable and serves on the socket it inherited. Re-running the command (not
# forking) is what lets SIGHUP and reload bring up new code. The supervisor keeps every
# listening socket open, so a connection that arrives while a child restarts waits in the
# kernel's queue instead of being refused.

_SUPERVISED = "PIXIE_WEB_SUPERVISED"
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 30.0     # seconds before restarting a crashed child
_CRASH_LIMIT = 6          # crashes of one slot in a row (each within _STABLE_AFTER): give up
_STABLE_AFTER = 30.0      # a child that ran this long resets its slot's crash count
_READY_TIMEOUT = 60.0     # for a new child to run its startup hooks and start listening
_STOP_GRACE = 5.0         # after shutdown_timeout, before SIGKILL
_SUPERVISOR_TICK = 0.05
_RELOAD_INTERVAL = 0.5    # seconds between looks at the watched files
_RELOAD_FILE_LIMIT = 20000


class _Supervision(namedtuple("_Supervision",
                              "slot processes listen_fd ready_fd lifeline_fd shared_dir")):
    """What a serving child learns from its supervisor (the _SUPERVISED variable);
    ``shared_dir``, private to this supervisor's children, is where they leave their metrics
    for each other."""

    def __str__(self):
        return ",".join(map(str, self))


def _take_supervision():
    """This process's place under a supervisor, or None. The variable is removed, so the
    app's own subprocesses (pool workers included) are not taken for serving children."""
    value = os.environ.pop(_SUPERVISED, None)
    if not value:
        return None
    *numbers, shared_dir = value.split(",", 5)
    return _Supervision(*map(int, numbers), shared_dir)


#: Set in a serving child of run(processes=N) or run(reload=True) (read by Metrics).
_supervision = None


def _listening_sockets(host, port, uds, fd, count):
    """The supervisor's listening sockets: on Linux one per child slot, bound with
    SO_REUSEPORT so that the kernel spreads connections over the children evenly; elsewhere,
    and for Unix sockets and an inherited fd, one socket that every child accepts from."""
    if fd is not None:
        return [socket.socket(fileno=fd)]
    if uds is not None:
        if os.path.exists(uds) and stat.S_ISSOCK(os.stat(uds).st_mode):
            os.unlink(uds)                  # a stale socket left by an earlier run
        listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listening.bind(uds)
        listening.listen(1024)
        return [listening]
    spread = count > 1 and hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sockets = []
    for _ in range(count if spread else 1):
        listening = socket.socket(family, socket.SOCK_STREAM)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if spread:
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listening.bind(address)
        address = listening.getsockname()   # port 0: the others take the port this one got
        listening.listen(1024)
        sockets.append(listening)
    return sockets


def _child_command():
    """The command that started this program, to start a serving child with."""
    argv = getattr(sys, "orig_argv", None) or []
    if len(argv) < 2 or sys.flags.interactive or sys.platform == "win32":
        raise RuntimeError("run(processes=N) and run(reload=True) start the program again for "
                           "each serving process: run the app from a script or with "
                           "python -m pixie_web, on a POSIX system")
    return [sys.executable, *argv[1:]]


def _source_roots(app):
    """The app's directories: those of the main script and of the modules defining its
    handlers, apart from the standard library's and installed packages'."""
    import sysconfig
    installed = {os.path.realpath(path) for name in ("stdlib", "platstdlib", "purelib",
                                                     "platlib")
                 if (path := sysconfig.get_paths().get(name))}
    files = [getattr(sys.modules.get("__main__"), "__file__", None)]
    files += [getattr(sys.modules.get(route.handler.__module__), "__file__", None)
              for route in app.routes()]
    roots = set()
    for file in filter(None, files):
        directory = os.path.dirname(os.path.realpath(file))
        if not any(directory == path or directory.startswith(path + os.sep)
                   for path in installed):
            roots.add(directory)
    return sorted(roots)


def _is_environment(directory, name):
    return (name.startswith(".") or name in ("__pycache__", "node_modules", "site-packages")
            or os.path.exists(os.path.join(directory, name, "pyvenv.cfg")))


def _watched_files(roots):
    """{path: modification time} of what reload watches: every .py file under the roots
    (virtual environments, caches and hidden directories left out), the imported modules
    under them, and every file in the TEMPLATE_PATH directories."""
    files = {}
    for root in roots:
        for directory, subdirectories, names in os.walk(root):
            subdirectories[:] = [name for name in subdirectories
                                 if not _is_environment(directory, name)]
            files.update(dict.fromkeys(os.path.join(directory, name) for name in names
                                       if name.endswith(".py")))
            if len(files) > _RELOAD_FILE_LIMIT:
                break
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and any(os.path.realpath(path).startswith(root + os.sep) for root in roots):
            files[path] = None
    for directory in TEMPLATE_PATH:
        if os.path.isdir(directory):
            for name in os.listdir(directory):
                files[os.path.join(directory, name)] = None
    for path in files:
        try:
            files[path] = os.stat(path).st_mtime_ns
        except OSError:
            files[path] = None      # gone: its return is a change as well
    return files


class _Child:
    """One serving child process of the supervisor."""

    def __init__(self, slot, process, ready_fd):
        self.slot = slot
        self.process = process
        self.ready_fd = ready_fd    # closed by the child without a byte: it failed to start
        self.ready = False
        self.started = time.monotonic()
        self.stopping = False       # the supervisor asked it to stop: not a crash


class _Supervisor:
    """Starts and watches the serving children (see the section comment)."""

    def __init__(self, processes, sockets, shutdown_timeout, reload_roots, command):
        self.processes = processes
        self.sockets = sockets
        self.shutdown_timeout = shutdown_timeout
        self.reload_roots = reload_roots
        self.command = command
        self.children = {}          # slot -> its current _Child
        self.leaving = []           # children replaced or stopped, not yet gone
        self.crashes = [0] * processes
        self.restart_at = {}        # slot -> when to start it again after a crash
        self.signals = []           # signal numbers received, handled by the loop
        self.status = 0
        self._lifeline = None

    def run(self):
        """Serve until SIGINT/SIGTERM (or a crash loop); the exit status."""
        import shutil
        import tempfile
        lifeline_read, self._lifeline = os.pipe()  # children see EOF if we die
        self.shared_dir = tempfile.mkdtemp(prefix="pixie-web-")
        previous = {number: signal.signal(number, self._on_signal)
                    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            self.lifeline_read = lifeline_read
            for slot in range(self.processes):
                self._start(slot)
            self._watch()
        finally:
            self._stop_all()
            for number, handler in previous.items():
                signal.signal(number, handler)
            os.close(lifeline_read)
            os.close(self._lifeline)
            for listening in self.sockets:
                listening.close()
            shutil.rmtree(self.shared_dir, ignore_errors=True)
        return self.status

    def _on_signal(self, number, frame):
        self.signals.append(number)

    def _watch(self):
        files = _watched_files(self.reload_roots) if self.reload_roots else None
        next_look = time.monotonic() + _RELOAD_INTERVAL
        while True:
            while self.signals:
                number = self.signals.pop(0)
                if number != signal.SIGHUP:
                    return
                log.info("SIGHUP: replacing the serving processes one by one")
                self._replace_all()
            self._check_children()
            if self.status:
                return
            now = time.monotonic()
            for slot, when in list(self.restart_at.items()):
                if when <= now:
                    del self.restart_at[slot]
                    self._start(slot)
            if files is not None and now >= next_look:
                latest = _watched_files(self.reload_roots)
                if latest != files:
                    changed = sorted(path for path in latest.keys() | files.keys()
                                     if latest.get(path) != files.get(path))
                    log.info("%s changed: restarting", ", ".join(changed[:3]) +
                             (f" and {len(changed) - 3} more" if len(changed) > 3 else ""))
                    files = latest
                    self._replace_all()
                next_look = time.monotonic() + _RELOAD_INTERVAL
            time.sleep(_SUPERVISOR_TICK)

    def _start(self, slot):
        listening = self.sockets[slot % len(self.sockets)]
        ready_read, ready_write = os.pipe()
        os.set_blocking(ready_read, False)
        supervision = _Supervision(slot, self.processes, listening.fileno(), ready_write,
                                   self.lifeline_read, self.shared_dir)
        import subprocess
        try:
            process = subprocess.Popen(
                self.command, env={**os.environ, _SUPERVISED: str(supervision)},
                pass_fds=(listening.fileno(), ready_write, self.lifeline_read),
                process_group=0)    # Ctrl+C reaches the supervisor, which forwards it
        except Exception:
            os.close(ready_read)
            raise
        finally:
            os.close(ready_write)
        child = _Child(slot, process, ready_read)
        old = self.children.get(slot)
        if old is not None:
            old.stopping = True
            self.leaving.append(old)
        self.children[slot] = child
        return child

    def _check_children(self):
        """Notice children that became ready, and those that exited."""
        for child in list(self.children.values()):
            self._look_ready(child)
            if child.process.poll() is not None:
                self._exited(child)
        for child in list(self.leaving):
            if child.process.poll() is not None:
                self.leaving.remove(child)
                self._close_ready(child)

    def _look_ready(self, child):
        if child.ready or child.ready_fd is None:
            return
        try:
            data = os.read(child.ready_fd, 1)
        except BlockingIOError:
            return
        if data:
            child.ready = True
            log.info("process %d (slot %d) is serving", child.process.pid, child.slot)
        self._close_ready(child)

    @staticmethod
    def _close_ready(child):
        if child.ready_fd is not None:
            os.close(child.ready_fd)
            child.ready_fd = None

    def _exited(self, child):
        """A current child exited without being asked to: restart it, after a delay that
        doubles with each crash in a row, or give up on a crash loop."""
        self._close_ready(child)
        del self.children[child.slot]
        slot, status = child.slot, child.process.returncode
        if time.monotonic() - child.started >= _STABLE_AFTER:
            self.crashes[slot] = 0
        self.crashes[slot] += 1
        if self.reload_roots:
            log.error("process %d (slot %d) exited with status %s; it starts again at the "
                      "next change", child.process.pid, slot, status)
            return
        if self.crashes[slot] >= _CRASH_LIMIT:
            log.error("process %d (slot %d) exited with status %s; slot %d crashed %d times "
                      "in a row: giving up, stopping every process", child.process.pid, slot,
                      status, slot, self.crashes[slot])
            self.status = 1
            return
        delay = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (self.crashes[slot] - 1))
        log.error("process %d (slot %d) exited with status %s; starting another in %.1fs",
                  child.process.pid, slot, status, delay)
        self.restart_at[slot] = time.monotonic() + delay

    def _replace_all(self):
        """Replace every child by a new one, one slot at a time: the old one is asked to stop
        only once the new one is serving. A new one that fails to start ends the round; the
        old ones keep serving."""
        for slot in range(self.processes):
            self.restart_at.pop(slot, None)
            old = self.children.get(slot)
            new = self._start(slot)
            deadline = time.monotonic() + _READY_TIMEOUT
            while not new.ready and new.process.poll() is None and not self.signals:
                if time.monotonic() > deadline:
                    break
                time.sleep(_SUPERVISOR_TICK)
                self._look_ready(new)
            if not new.ready:
                self.children.pop(slot)
                new.stopping = True
                self._terminate(new)
                self.leaving.append(new)
                if old is not None:
                    old.stopping = False
                    self.leaving.remove(old)
                    self.children[slot] = old
                elif not self.reload_roots:     # an empty slot (a crash): the usual backoff
                    self.restart_at[slot] = time.monotonic() + _BACKOFF_FIRST
                if not self.signals:
                    log.error("the new process for slot %d did not start (status %s): the "
                              "running processes keep serving%s", slot, new.process.poll(),
                              "; waiting for the next change" if self.reload_roots else "")
                return
            if old is not None:
                self._terminate(old)
            self.crashes[slot] = 0

    @staticmethod
    def _terminate(child):
        try:
            child.process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

    def _stop_all(self):
        """SIGTERM to every child (again on another SIGINT/SIGTERM: stop at once); SIGKILL
        to those still running after shutdown_timeout and a grace period."""
        children = list(self.children.values()) + self.leaving
        self.children, self.leaving = {}, []
        for child in children:
            self._terminate(child)
        deadline = time.monotonic() + self.shutdown_timeout + _STOP_GRACE
        while any(child.process.poll() is None for child in children):
            if time.monotonic() > deadline:
                for child in children:
                    if child.process.poll() is None:
                        log.error("process %d did not stop in time: killed", child.process.pid)
                        child.process.kill()
                        child.process.wait()
                break
            if self.signals:
                self.signals.clear()
                for child in children:
                    self._terminate(child)
            time.sleep(_SUPERVISOR_TICK)
        for child in children:
            self._close_ready(child)



# ---- Metrics ---------------------------------------------------------------------------------

_DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(value):
    """A Prometheus label value, escaped (backslash, double quote, line feed)."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Component: ``app.install(Metrics())`` serves ``/metrics`` in the Prometheus text
    format: requests by route pattern, method and status; a latency histogram per route;
    requests in flight; the process pool's queue depth and worker restarts; background task
    outcomes. Under run(processes=N) every serving process leaves its numbers in the
    supervisor's directory each ``publish_interval`` seconds, and a scrape (answered by any
    of them) shows every process's series, labelled ``pid``."""

    name = "metrics"

    def __init__(self, path="/metrics", buckets=_DEFAULT_BUCKETS, publish_interval=1.0):
        self.path = path
        self.buckets = tuple(sorted(buckets))
        self.publish_interval = publish_interval
        self._requests = {}     # (route, method, status) -> count
        self._latency = {}      # route -> [count per bucket..., count, sum]
        self._in_flight = 0
        self._host = None       # the _Server of the last request seen (pool, tasks)
        self._publisher = None

    def setup(self, app):
        app.route(self.path, name="metrics")(self.render)
        app.on_startup(self._start_publishing)
        app.on_shutdown(self._stop_publishing)

    async def middleware(self, request, call_next):
        self._in_flight += 1
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status
            return response
        finally:
            self._in_flight -= 1
            self._host = request._server
            self._observe(request, status, time.perf_counter() - started)

    def _observe(self, request, status, seconds):
        route = request.route.path if request.route is not None else "<unrouted>"
        key = (route, request.method, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        series = self._latency.get(route)
        if series is None:
            series = self._latency[route] = [0] * (len(self.buckets) + 2)
        for index, bound in enumerate(self.buckets):
            if seconds <= bound:
                series[index] += 1
        series[-2] += 1
        series[-1] += seconds

    def _snapshot(self, host):
        """This process's numbers, as JSON-ready data."""
        pool = getattr(host, "pool", None)
        tasks = getattr(host, "tasks", None)
        return {"requests": [[*key, count] for key, count in self._requests.items()],
                "latency": self._latency, "in_flight": self._in_flight,
                "queue_depth": pool.queue_depth if pool else 0,
                "restarts": pool.restarts if pool else 0,
                "tasks": dict(tasks.outcomes) if tasks is not None else {}}

    # -- several processes: each leaves its snapshot in the supervisor's directory --

    def _file(self, pid):
        return os.path.join(_supervision.shared_dir, f"metrics-{pid}.json")

    async def _start_publishing(self, app):
        if _supervision is not None and self._publisher is None:
            self._publisher = asyncio.ensure_future(self._publish())

    async def _publish(self):
        path, temporary = self._file(os.getpid()), self._file(f"{os.getpid()}-new")
        while True:
            with open(temporary, "w") as file:
                json.dump(self._snapshot(self._host), file)
            os.replace(temporary, path)         # readers never see half a file
            await asyncio.sleep(self.publish_interval)

    async def _stop_publishing(self, app):
        if self._publisher is not None:
            self._publisher.cancel()
            self._publisher = None
            with contextlib.suppress(OSError):
                os.unlink(self._file(os.getpid()))

    def _others(self):
        """(pid, snapshot) of the other serving processes; files of gone ones are removed."""
        directory = _supervision.shared_dir
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return                      # the supervisor is stopping
        for name in names:
            match = re.fullmatch(r"metrics-(\d+)\.json", name)
            if match is None or int(match[1]) == os.getpid():
                continue
            pid, path = int(match[1]), os.path.join(directory, name)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                continue
            except OSError:
                pass                    # alive, owned by someone else: still ours to read
            try:
                with open(path) as file:
                    yield pid, json.load(file)
            except (OSError, ValueError):
                continue                # gone, or being replaced this instant

    def render(self, request):
        """The exposition text (the ``/metrics`` route)."""
        own = self._snapshot(request._server or self._host)
        processes = [(None, own)] if _supervision is None else [
            (os.getpid(), own), *self._others()]
        lines = ["# HELP pixie_requests_total Requests answered, by route, method and status.",
                 "# TYPE pixie_requests_total counter"]
        for pid, snapshot in processes:
            for route, method, status, count in sorted(map(tuple, snapshot["requests"])):
                lines.append(_sample("pixie_requests_total", count, pid=pid, route=route,
                                     method=method, status=status))
        lines += ["# HELP pixie_request_duration_seconds Time from dispatch to response.",
                  "# TYPE pixie_request_duration_seconds histogram"]
        for pid, snapshot in processes:
            for route, series in sorted(snapshot["latency"].items()):
                for bound, count in [*zip(self.buckets, series), ("+Inf", series[-2])]:
                    lines.append(_sample("pixie_request_duration_seconds_bucket", count,
                                         pid=pid, route=route, le=bound))
                lines.append(_sample("pixie_request_duration_seconds_sum", series[-1],
                                     pid=pid, route=route))
                lines.append(_sample("pixie_request_duration_seconds_count", series[-2],
                                     pid=pid, route=route))
        for name, kind, text, key in _PROCESS_SERIES:
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            lines += [_sample(name, snapshot[key], pid=pid) for pid, snapshot in processes]
        lines += ["# HELP pixie_tasks_total Background tasks finished, by outcome.",
                  "# TYPE pixie_tasks_total counter"]
        for pid, snapshot in processes:
            for outcome in ("succeeded", "failed", "cancelled"):
                lines.append(_sample("pixie_tasks_total", snapshot["tasks"].get(outcome, 0),
                                     pid=pid, outcome=outcome))
        return Response("\n".join(lines) + "\n",
                        content_type="text/plain; version=0.0.4; charset=utf-8")


def _sample(name, value, **labels):
    """One exposition line; labels whose value is None are left out."""
    pairs = ",".join(f'{key}="{_label(label)}"' for key, label in labels.items()
                     if label is not None)
    return f"{name}{{{pairs}}} {value}" if pairs else f"{name} {value}"


#: The single-number series of Metrics: (name, type, help, snapshot key).
_PROCESS_SERIES = (
    ("pixie_requests_in_flight", "gauge", "Requests being answered (this one included).",
     "in_flight"),
    ("pixie_pool_queue_depth", "gauge", "Pool calls waiting for a free worker.",
     "queue_depth"),
    ("pixie_pool_worker_restarts_total", "counter", "Pool workers replaced.", "restarts"),
)


# ---- Application -----------------------------------------------------------------------------

_SETTINGS = {
    "max_request_line": 8190,
    "max_header_bytes": 16384,
    "max_header_count": 100,
    "max_body_size": 16 * 1024 * 1024,
    **_DEFAULT_PARSING_LIMITS._asdict(),     # query and form limits, set beside their parser
    "max_pipelined": 32,
    "stream_buffer_size": 256 * 1024,
    "header_timeout": 10.0,
    "body_timeout": 30.0,
    "keepalive_timeout": 5.0,
    "handler_timeout": 30.0,
    "shutdown_timeout": 10.0,
    "pool_niceness": 10,
    "max_tasks": 100,          # background tasks running at once per process; more wait
    "slow_handler_threshold": None,   # seconds: handlers slower than this are logged
    "max_ws_message_size": 1024 * 1024,     # bytes of one WebSocket message: else 1009
    "ws_ping_interval": 20.0,      # seconds between the server's pings (0: none)
    "ws_ping_timeout": 20.0,       # for the pong, else the peer is dropped
    "ws_close_timeout": 5.0,       # for the peer's close after the server's
    "websocket_compression": True,     # permessage-deflate when the client offers it
    "websocket_origins": None,     # Origin values allowed to open WebSockets (None: any)
    # peers whose Forwarded / X-Forwarded-* headers are believed: addresses or networks
    # ("10.0.0.0/8"), and "unix" for a Unix-socket peer. Empty: those headers are ignored.
    "trusted_proxies": (),
}


def _in_daemonic_process():
    import multiprocessing
    return multiprocessing.current_process().daemon


# The sweep that enforces deadlines runs five times per shortest timeout, within these bounds.
_SWEEP_MIN, _SWEEP_MAX = 0.02, 1.0
_SHUTDOWN_POLL = 0.02   # seconds between looks for connections gone idle during a shutdown
_FIRST_REQUEST_GRACE = 0.5   # for a new connection's first request, once shutdown began
_CANCEL_GRACE = 1.0     # seconds cancelled handlers and streams get to finish at shutdown


class _Server:
    """What one running server (or TestClient) shares between its connections."""

    def __init__(self, app, loop, access_log=False, scheme="http"):
        self.app = app
        self.loop = loop
        self.access_log = access_log
        self.stamp_requests = access_log or app.debug    # see Request.started
        self.scheme = scheme
        self.connections = set()
        self.websockets = set()     # the _WebSocketProtocols of upgraded connections
        self.shutting_down = False
        self.hurry = False          # a second signal: stop without waiting for requests
        self.parse_header_lines = _parse_header_lines
        self.use_sendfile = scheme == "http"   # not through TLS
        self.pool = None
        self._pool_options = (None, None, None)    # workers, start_method, executor
        self._pool_started = False
        self._pool_lock = asyncio.Lock()
        self.tasks = None           # the _TaskRunner, once started
        self._thread_pool = None
        self._sweep_handle = None
        self._date_handle = None
        self._sweep_interval = max(_SWEEP_MIN, min(_SWEEP_MAX, min(
            app.header_timeout, app.body_timeout, app.keepalive_timeout) / 5))

    async def _start_pool(self, pool_routes=()):
        workers, start_method, executor = self._pool_options
        if executor is not None:
            self.pool = _ExecutorPool(executor)
        elif workers == 0:
            log.warning("workers=0: pool routes and in_pool run in the thread pool instead")
        elif _in_daemonic_process():
            log.warning("this process cannot start worker processes (it is daemonic): pool "
                        "routes and in_pool run in the thread pool; pass executor= for a pool")
        else:
            pool = _ProcessPool(workers or os.cpu_count() or 1, start_method,
                                niceness=self.app.pool_niceness)
            pool.check_handlers(pool_routes)
            await pool.start()
            self.pool = pool
        self._pool_started = True

    async def started_pool(self):
        """The pool for in_pool: started at the first call when no pool route started it;
        None when there is none (workers=0, a daemonic process)."""
        if not self._pool_started and not self.shutting_down:
            async with self._pool_lock:
                if not self._pool_started:
                    await self._start_pool()
        return self.pool

    def thread_pool(self):
        if self._thread_pool is None:
            self._thread_pool = concurrent.futures.ThreadPoolExecutor(
                thread_name_prefix="pixie-web-thread")
        return self._thread_pool

    async def start(self, workers=None, start_method=None, executor=None):
        """Start the pool (now if there are pool routes, else at the first in_pool), run
        startup hooks, start timers."""
        app = self.app
        self._pool_options = (workers, start_method, executor)
        pool_routes = [route for route in app.routes() if route.route_type is RouteType.pool]
        if pool_routes:
            await self._start_pool(pool_routes)
        self.tasks = _TaskRunner(self, app.max_tasks)
        for each_app in app._apps():
            each_app._task_runner = self.tasks
        for each_app in app._apps():
            for hook in each_app._startup:
                await _maybe_await(hook(each_app))
        _running_hosts.append(self)
        self.tasks.start_timers(app._apps(),
                                first_process=_supervision is None or _supervision.slot == 0)
        self._sweep_handle = self.loop.call_later(self._sweep_interval, self._sweep)
        self._tick_date()

    def _sweep(self):
        """Close connections whose header, body or keep-alive deadline has passed.

        A connection that went idle since the last sweep gets its keep-alive deadline here
        (counted from now, so never early): answering a request costs no clock call."""
        now = time.monotonic()
        keepalive_deadline = now + self.app.keepalive_timeout
        for connection in list(self.connections):
            deadline = connection.deadline
            if deadline is None:
                continue
            if deadline == _IDLE_SINCE_LAST_SWEEP:
                connection.deadline = keepalive_deadline
            elif deadline <= now:
                connection.deadline_passed()
        self._sweep_handle = self.loop.call_later(self._sweep_interval, self._sweep)

    def _tick_date(self):
        """Refresh the Date line just after every new second while the server runs."""
        now = time.time()      # one reading: the second shown and the next tick agree
        _date_cache.get(now)
        # 1 ms past the boundary, so a timer that fires a little early still sees it
        self._date_handle = self.loop.call_later(1.001 - now % 1.0, self._tick_date)

    def log_access(self, request, status, size):
        """One Common Log Format line plus the duration (inputs are validated ASCII)."""
        query = "?" + request.query_string if request.query_string else ""
        line = (f'{request.remote_addr or "-"} - - [{time.strftime("%d/%b/%Y:%H:%M:%S %z")}] '
                f'"{request.method} {request.raw_path}{query} HTTP/{request.http_version}" '
                f'{status} {size} {(time.monotonic() - request.started) * 1000:.1f}ms')
        access_log.info(line.encode("ascii", "backslashreplace").decode("ascii"))

    async def stop(self):
        """Finish in-flight requests (up to shutdown_timeout), run shutdown hooks, stop pools."""
        self.shutting_down = True
        if self in _running_hosts:
            _running_hosts.remove(self)
        deadline = self.loop.time() + self.app.shutdown_timeout
        for websocket in list(self.websockets):
            websocket.going_away()              # 1001; their handlers then end
        # A connection accepted just before the listener closed may not have sent its first
        # request yet: it gets a moment to, then is answered (a rolling replacement of
        # serving processes must not drop it).
        patience = self.loop.time() + _FIRST_REQUEST_GRACE
        while ((self.connections or self.websockets) and self.loop.time() < deadline
               and not self.hurry):
            for connection in list(self.connections):
                # (an idle connection that has answered requests waits for the next one)
                if connection.is_idle() and (connection.deadline_kind == "idle"
                                             or self.loop.time() > patience):
                    connection._close()
            if self.connections or self.websockets:
                await asyncio.sleep(_SHUTDOWN_POLL)
        unfinished = [connection._task for connection in self.connections
                      if connection._task is not None]
        for connection in list(self.connections):
            connection._close()
        for websocket in list(self.websockets):
            websocket.transport.abort()         # no close from the peer in time
        for task in unfinished:
            task.cancel()       # a handler or stream still running: its client is gone
        if unfinished:
            await asyncio.wait(unfinished, timeout=_CANCEL_GRACE)
        for handle in (self._sweep_handle, self._date_handle):
            if handle is not None:
                handle.cancel()
        if self.tasks is not None:
            await self.tasks.stop(max(0.0, deadline - self.loop.time()))
            for each_app in self.app._apps():
                if each_app._task_runner is self.tasks:
                    each_app._task_runner = None
        for each_app in self.app._apps():
            for hook in each_app._shutdown:
                try:
                    await _maybe_await(hook(each_app))
                except Exception:
                    log.exception("error in a shutdown hook")
        if self.pool is not None:
            await self.pool.close()
        if self._thread_pool is not None:
            self._thread_pool.shutdown(wait=False, cancel_futures=True)


class App(Router):
    """The application: routes, hooks, error handlers, settings, and ``run()``.

    Settings (limits and timeouts) are keyword arguments; ``run()`` accepts the same
    names to override them. See the README for every default.
    """

    def __init__(self, prefix="", debug=False, redirect_slashes=False, executor=None,
                 title=None, openapi_url="/openapi.json", docs_url="/docs", **settings):
        super().__init__(prefix)
        self.debug = debug
        self.redirect_slashes = redirect_slashes
        self.executor = executor
        self.title = title                 # the OpenAPI document's info.title
        self.openapi_url = openapi_url     # both served under the prefix where no route is
        self.docs_url = docs_url           # (see _openapi_fallback); None: not served
        self._openapi_cache = None         # (routes version, document, docs page)
        for name, default in _SETTINGS.items():
            setattr(self, name, default)
        self.configure_limits(**settings)
        self._error_handlers = {}
        self._before = []
        self._after = []
        self._middleware = []
        self._startup = []
        self._shutdown = []
        self._children = []
        self._components = []
        self._asgi_host = None         # the _Server of the ASGI front end, once started
        self._wsgi_adapter = None      # app.wsgi, made at first use
        self._commands = {}            # name -> function, for app.cli()
        self._task_runner = None       # the running process's _TaskRunner (add_task)
        self._periodic = []            # (seconds, function, each_process) of @app.every
        self._works_version = -1       # see dispatch: composed when first needed
        self._works = self._outcome_works = None
        self.config = {}

    @property
    def debug(self):
        """Tracebacks in 500 pages, and a Server-Timing header on every response."""
        return self._debug

    @debug.setter
    def debug(self, value):
        self._debug = value
        _routes_changed()          # debug mode times every handler

    def configure_limits(self, **settings):
        """Change limits and timeouts (the names of the README's table)."""
        for name, value in settings.items():
            if name not in _SETTINGS:
                raise TypeError(f"unknown setting {name!r}; known settings: "
                                f"{', '.join(sorted(_SETTINGS))}")
            setattr(self, name, value)
        _routes_changed()          # each route's work depends on slow_handler_threshold
        self._head_cache = {}      # parsed header sections; valid for these limits only
        self._trusted_networks = _proxy_networks(self.trusted_proxies)
        # what requests carry (also into pool workers) to parse bodies
        self._parsing_limits = _ParsingLimits(
            self.max_query_params, self.max_form_parts, self.max_part_header_bytes,
            self.max_form_field_size, self.spool_threshold)

    # -- hooks and components --

    def error(self, code_or_exception):
        """Decorator: ``@app.error(404)`` or ``@app.error(KeyError)`` handles that error;
        the handler is called as ``handler(request, error)``."""
        def decorator(handler):
            self._error_handlers[code_or_exception] = handler
            return handler
        return decorator

    def before_request(self, func):
        """Run ``func(request)`` before each handler; a non-None result is the response."""
        self._before.append(func)
        _routes_changed()
        return func

    def after_request(self, func):
        """Run ``func(request, response)`` on every response; a non-None result replaces it."""
        self._after.append(func)
        _routes_changed()
        return func

    def middleware(self, func):
        """Register ``async def mw(request, call_next)``; the first registered runs outermost."""
        self._middleware.append(func)
        _routes_changed()
        return func

    def on_startup(self, func):
        """Run ``func(app)`` (sync or async) when the server starts."""
        self._startup.append(func)
        return func

    def on_shutdown(self, func):
        """Run ``func(app)`` (sync or async) when the server stops."""
        self._shutdown.append(func)
        return func

    def install(self, component):
        """Install a component: any object with some of ``name``, ``setup(app)``,
        ``startup(app)``, ``shutdown(app)`` and ``middleware(request, call_next)``."""
        name = getattr(component, "name", None)
        if name and name in self.config:
            for key, value in self.config[name].items():
                setattr(component, key, value)
        if hasattr(component, "setup"):
            component.setup(self)
        if hasattr(component, "startup"):
            self.on_startup(component.startup)
        if hasattr(component, "shutdown"):
            self.on_shutdown(component.shutdown)
        if hasattr(component, "middleware"):
            self.middleware(component.middleware)
        self._components.append(component)
        return component

    def configure(self, options):
        """``app.configure({component_name: {attribute: value}})`` overrides component settings."""
        for name, values in options.items():
            self.config.setdefault(name, {}).update(values)
            for component in self._components:
                if getattr(component, "name", None) == name:
                    for key, value in values.items():
                        setattr(component, key, value)

    def static(self, prefix, directory, max_age=3600, follow_symlinks=False, cached=False):
        """Serve the files under ``directory`` at ``prefix/<path>`` (see static_file)."""
        directory = os.path.abspath(directory)
        serve_file = cached_file if cached else static_file

        def serve_static(request, path):
            return serve_file(path, directory, max_age=max_age, follow_symlinks=follow_symlinks)

        self.route(prefix.rstrip("/") + "/<path:path>", RouteType.sync,
                   name=f"static:{prefix}")(serve_static)
        return serve_static

    def mount(self, prefix, other):
        """Serve every route of ``other`` (an App or Router) under ``prefix``."""
        super().mount(prefix, other)
        if isinstance(other, App):
            self._children.append(other)
        return other

    def _apps(self):
        """This app and every app mounted in it (for lifecycle hooks)."""
        apps, todo = [], [self]
        while todo:
            app = todo.pop(0)
            if app not in apps:
                apps.append(app)
                todo.extend(app._children)
        return apps

    # -- the dispatch core: every front end reaches the app through these two --

    def route_request(self, request, routing_path, content_length=None, upgrade=False):
        """Route a request whose head has arrived (the route decides how its body is read):
        set ``request.route`` and ``.path_params``, or ``request._routing_outcome`` (a 404,
        405, automatic OPTIONS, redirect, a 400 for a wildcard value that does not convert,
        or a 413 for a declared body larger than max_body_size). ``routing_path`` keeps an
        encoded slash as _ENCODED_SLASH. ``upgrade``: the Connection header lists
        ``upgrade`` (a WebSocket route may take the request)."""
        if self._trusted_networks:
            _apply_proxy_headers(request, self._trusted_networks)
        if upgrade and self._route_websocket(request, routing_path, None):
            return
        try:
            route, params, allowed = self.find(request.method, routing_path)
        except HTTPError as error:          # a wildcard value that does not convert: 400
            request._routing_outcome = error
            return
        request.route = route
        request.path_params = params
        if route is None:
            self._routing_error(request, allowed)
        elif content_length is not None and content_length > self.max_body_size:
            request._routing_outcome = HTTPError(
                413, f"the body is larger than max_body_size ({self.max_body_size} bytes)")

    def _route_websocket(self, request, routing_path, offer):
        """Route a WebSocket handshake to its route: True, with ``request._websocket_offer``
        set, or the handshake's refusal as the outcome (RFC 6455 4.2.1, origins); False
        when no WebSocket route has the path (an ordinary request then). ``offer``: the
        WebSocketOffer when the front end checked the handshake itself (ASGI)."""
        if offer is None and "websocket" not in request.headers.get("upgrade", "").lower():
            return False
        try:
            route, params, _ = self.find("WEBSOCKET", routing_path)
        except HTTPError:
            return False          # a wildcard value that does not convert: the usual 400
        if route is None:
            return False
        request.route = route
        request.path_params = params
        try:
            if offer is None:
                offer = check_handshake(request.method, request.http_version, request.headers)
                if request.headers.get("content-length", "0") != "0" or (
                        "transfer-encoding" in request.headers):
                    raise HTTPError(400, "a WebSocket handshake has no body")
            origins = route.websocket.origins
            if origins is None and self.websocket_origins is not None:
                origins = frozenset(self.websocket_origins)
            if origins is not None and request.headers.get("origin") not in origins:
                raise HTTPError(403, "WebSockets from this origin are not allowed")
        except HTTPError as error:
            request._routing_outcome = error
            return True
        request._websocket_offer = offer
        return True

    def dispatch(self, request):
        """The Response for a routed request whose body is in (or streaming) — or, when the
        work must wait (an async handler that suspends, a thread or pool route, hooks or
        middleware), a coroutine that produces it. Never raises: errors become responses.

        The work for each route was composed once (see _compose_route): nothing about the
        route type, hooks or middleware is decided here."""
        if self._works_version != _routes_version:
            self._compose()
        if request._routing_outcome is not None:
            run, through = self._outcome_works[request.route]
        else:
            run, through = self._works[request.route]
        if through is not None:
            return through(request)
        # No hooks or middleware: the handler's value is converted at once when it is
        # ready (the usual case: no task, no await).
        try:
            value = run(request)
            if type(value) is not CoroutineType:
                return to_response(value)
        except Exception as error:
            return self._error_response(request, error)
        return self._convert_later(request, value)

    # -- the ASGI front end (see "ASGI adapter") --

    async def __call__(self, scope, receive, send):
        """ASGI 3: ``uvicorn module:app``, hypercorn, granian... serve an App as it is."""
        kind = scope["type"]
        if kind == "http":
            await _asgi_http(self, scope, receive, send)
        elif kind == "websocket":
            await _asgi_websocket(self, scope, receive, send)
        elif kind == "lifespan":
            await _asgi_lifespan(self, receive, send)
        else:
            raise NotImplementedError(f"pixie_web does not serve ASGI {kind!r} scopes")

    async def _asgi_host_started(self):
        """The started _Server (pools, startup hooks) of the ASGI front end: started at
        lifespan startup, or by the first request when the server sends no lifespan."""
        host = self._asgi_host
        if (host is not None and host.started.done() and not host.started.cancelled()
                and host.started.exception() is None):
            return host                      # the usual case: started long ago
        if host is None:
            host = self._asgi_host = self._new_host(asyncio.get_running_loop())
            host.started = asyncio.ensure_future(host.start(executor=self.executor))
        try:
            await asyncio.shield(host.started)
        except BaseException:
            if self._asgi_host is host and host.started.done():
                self._asgi_host = None       # a failed start is tried again, not kept
            raise
        return host

    # -- background tasks --

    def add_task(self, function, /, *args, retries=0, timeout=None, **kwargs):
        """Run ``function(*args, **kwargs)`` in the background of the serving process: a
        sync function in the thread pool, an async one on the event loop. Failures are
        logged; ``retries`` more attempts follow with exponential backoff and jitter;
        ``timeout`` (seconds) bounds each attempt. Returns a TaskHandle. At most
        ``max_tasks`` run at once; at shutdown they get ``shutdown_timeout``, then are
        cancelled."""
        runner = self._task_runner
        if runner is None:
            raise RuntimeError("add_task needs a running app (run(), TestClient, or an ASGI "
                               "or WSGI server that has started it)")
        return runner.submit(function, args, kwargs, retries, timeout)

    async def in_pool(self, function, /, *args, timeout=None, **kwargs):
        """``await app.in_pool(func, *args, **kwargs)``: ``in_pool`` in this app's own
        process pool."""
        runner = self._task_runner
        if runner is None:
            raise RuntimeError("in_pool needs a running app (run(), TestClient, or an ASGI "
                               "or WSGI server that has started it)")
        return await _apply_in_pool(runner.host, function, args, kwargs, timeout)

    def every(self, seconds, each_process=False):
        """Decorator: run the function every ``seconds`` (a run is skipped while the previous
        one is still going). Under run(processes=N) it runs in the first serving process
        only — periodic jobs usually touch shared state — unless ``each_process=True`` (a
        per-process cache, say)."""
        if not seconds > 0:
            raise ValueError(f"every(seconds): seconds must be positive, not {seconds!r}")

        def decorator(function):
            self._periodic.append((seconds, function, each_process))
            return function
        return decorator

    # -- the script's own command line --

    def command(self, name=None):
        """Decorator: make a function a command of ``app.cli()`` (``python app.py NAME``).
        Its parameters become the command's arguments (without a default) and ``--options``
        (with one); annotations or defaults convert the values; the docstring is the help."""
        def decorator(function):
            self._commands[name or function.__name__.replace("_", "-")] = function
            return function
        return decorator

    def cli(self, argv=None, prog=None):
        """The script's command line: ``run`` (the default, with the options of
        ``python -m pixie_web``), ``routes``, and every ``@app.command()``. Exits with the
        command's status."""
        sys.exit(_cli(self, sys.argv[1:] if argv is None else list(argv), prog))

    def _new_host(self, loop):
        """A _Server without a listener, for the ASGI and WSGI front ends: their pools and
        hooks (start() runs the startup hooks, stop() the shutdown hooks)."""
        return _Server(self, loop)

    @property
    def wsgi(self):
        """The WSGI application of this app (``gunicorn module:app.wsgi``)."""
        if self._wsgi_adapter is None:
            self._wsgi_adapter = _WSGIAdapter(self)
        return self._wsgi_adapter

    def openapi(self):
        """The OpenAPI 3.1 document (a new dict each call) of every HTTP route (SPEC 14).

        Example::

            print(json.dumps(app.openapi(), indent=2))
        """
        return _openapi_document(self)

    def _routing_error(self, request, allowed):
        """The outcome for a request no route takes: 404, 405, automatic OPTIONS, a redirect,
        or the OpenAPI document or docs page (_openapi_fallback)."""
        if request.path == "*":     # OPTIONS * asks about the server as a whole
            methods = {route.method for route in self._routes} - {"WEBSOCKET"} | {"OPTIONS"}
            if "GET" in methods:
                methods.add("HEAD")
            allowed = sorted(methods)
        if allowed == ["WEBSOCKET"]:         # a WebSocket-only path, asked without Upgrade
            outcome = HTTPError(426, "this is a WebSocket endpoint",
                                {"Upgrade": "websocket", "Connection": "Upgrade"})
        elif allowed is not None:
            if request.method == "OPTIONS":
                outcome = Response(None, 204, headers={"Allow": ", ".join(allowed)})
            else:
                outcome = HTTPError(405, None, {"Allow": ", ".join(allowed)})
        elif (documented := _openapi_fallback(self, request)) is not None:
            outcome = documented
        else:
            outcome = HTTPError(404)
            if self.redirect_slashes and request.path not in ("/", "*"):
                other = (request.path[:-1] if request.path.endswith("/")
                         else request.path + "/")
                try:
                    route, _, _ = self.find(request.method, other)
                except HTTPError:             # the other path would be refused: no redirect
                    route = None
                if route is not None:
                    location = "/" + quote(other, safe="/:@!$&'()*+,;=-._~").lstrip("/")
                    if request.query_string:
                        location += "?" + request.query_string
                    outcome = HTTPError(308, None, {"Location": location})
        request._routing_outcome = outcome
        return outcome

    # -- composing each route's work (again whenever routes, hooks or middleware change) --

    def _compose(self):
        routes = self.routes()
        self._works = {route: self._compose_route(route, self._runner(route)) for route in routes}
        self._outcome_works = {route: self._compose_route(route, _answer_routing_outcome)
                               for route in [None, *routes]}
        self._works_version = _routes_version

    def _hooks(self, route, kind):
        hooks = getattr(self, kind)
        owner = route.owner if route is not None else None
        if isinstance(owner, App) and owner is not self and getattr(owner, kind):
            hooks = hooks + getattr(owner, kind) if kind == "_before" else (
                getattr(owner, kind) + hooks)
        return hooks

    def _runner(self, route):
        """The route type's runner (see _RUNNERS), timed in debug mode or when slow handlers
        are reported."""
        runner = _websocket_runner if route.websocket is not None else (
            _RUNNERS[route.route_type])
        run = runner(self, route)
        if route.binding is not None:
            run = _bound(route.binding, run)
        if self.debug or self.slow_handler_threshold is not None:
            run = _timed(route, run, self.slow_handler_threshold)
        return run

    def _compose_route(self, route, run):
        """The work for ``route``: ``(run, None)`` when no hooks or middleware apply (see
        dispatch), else ``(run, through)``: ``run`` inside the before_request hooks, the
        middleware and the after_request hooks (and, in debug mode, Server-Timing)."""
        before, after = self._hooks(route, "_before"), self._hooks(route, "_after")
        if not (before or after or self._middleware or self.debug):
            return run, None
        chain = functools.partial(self._endpoint, run, tuple(before))
        for middleware in reversed(self._middleware):
            chain = functools.partial(_run_middleware, middleware, chain)
        through = functools.partial(self._respond_through, chain, tuple(after))
        if self.debug:
            through = functools.partial(self._respond_timed, through)
        return run, through

    @staticmethod
    async def _respond_timed(through, request):
        response = await through(request)
        response.headers["Server-Timing"] = _server_timing(request, time.monotonic())
        return response

    async def _convert_later(self, request, pending):
        try:
            return to_response(await pending)
        except Exception as error:
            return await self._error_response(request, error)

    async def _respond_through(self, chain, after, request):
        """Middleware (outermost first), then after_request hooks, around _endpoint."""
        try:
            response = await chain(request)
        except Exception as exc:
            response = await self._error_response(request, exc)
        for hook in after:
            try:
                replaced = await _maybe_await(hook(request, response))
                if replaced is not None:
                    response = to_response(replaced)
            except Exception as exc:
                response = await self._error_response(request, exc)
        return response

    async def _endpoint(self, run, before, request):
        """The innermost step: before_request hooks, then the handler; HTTPErrors become
        responses here so middleware sees them."""
        try:
            for hook in before:
                result = await _maybe_await(hook(request))
                if result is not None:
                    return to_response(result)
            value = run(request)
            if type(value) is CoroutineType:
                value = await value
            return to_response(value)
        except HTTPError as error:
            return await self._error_response(request, error)

    def _handler_timeout(self, route):
        return route.timeout if route.timeout is not None else self.handler_timeout

    def _error_handler_for(self, request, error):
        route = request.route
        apps = [self]
        if route is not None and isinstance(route.owner, App) and route.owner is not self:
            apps.insert(0, route.owner)
        for app in apps:
            handlers = app._error_handlers
            if not handlers:
                continue
            if isinstance(error, HTTPError) and error.status in handlers:
                return handlers[error.status]
            for cls in type(error).__mro__:
                if cls in handlers:
                    return handlers[cls]
            if not isinstance(error, HTTPError) and 500 in handlers:
                return handlers[500]
        return None

    async def _error_response(self, request, error):
        """The response for an exception: a registered error handler, else the default page."""
        handler = self._error_handler_for(request, error)
        status = error.status if isinstance(error, HTTPError) else 500
        if handler is not None:
            try:
                result = await _maybe_await(handler(request, error))
                response = to_response(result)
                if not isinstance(result, (Response, tuple)):
                    response.status = status
                if isinstance(error, HTTPError) and error.headers:
                    for name, value in error.headers.items():
                        if name not in response.headers:
                            response.headers[name] = value
                return response
            except Exception:
                log.exception("error in the error handler for %r", error)
                return self._internal_error(request, sys.exc_info()[1])
        if isinstance(error, HTTPError):
            try:
                return http_error_response(error)
            except Exception as failure:     # e.g. a header with CR/LF given to HTTPError
                return self._internal_error(request, failure)
        return self._internal_error(request, error)

    def _internal_error(self, request, error):
        # raw_path is validated visible ASCII: request data cannot forge log lines
        log.error("unhandled exception in %s %s", request.method, request.raw_path,
                  exc_info=error)
        debug_text = "".join(traceback.format_exception(error)) if self.debug else None
        return error_response(500, debug_text=debug_text)

    # -- running --

    def run(self, host="127.0.0.1", port=8000, workers=None, debug=None, access_log=True,
            executor=None, start_method=None, certfile=None, keyfile=None, ssl=None,
            uds=None, fd=None, processes=1, reload=False, **settings):
        """Serve the app until SIGINT/SIGTERM, then shut down gracefully.

        ``uds``: listen on this Unix socket path instead of host:port (for a proxy on the same
        machine); ``fd``: serve on an already listening socket, e.g. 3 under systemd socket
        activation. ``processes=N``: N serving processes share the port under a supervisor
        that restarts them (SIGHUP: replaces them one by one); ``reload=True``: restart when
        a source file or template changes (see the Supervisor section)."""
        global _supervision
        if _called_from_pool_import():
            return
        if not isinstance(processes, int) or processes < 1:
            raise ValueError(f"processes must be a whole number of at least 1, not "
                             f"{processes!r}")
        self.configure_limits(**settings)
        if debug is not None:
            self.debug = debug
        supervision = _take_supervision()
        _default_logging(with_pid=supervision is not None or processes > 1 or reload)
        if supervision is None and (processes > 1 or reload):
            self._supervise(host, port, uds, fd, processes, reload)
            return
        if supervision is not None:
            _supervision = supervision
            fd, uds = supervision.listen_fd, None
            if workers is None:     # the pools of all children together: one per core
                workers = max(1, (os.cpu_count() or 1) // supervision.processes)
        loop = _new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(
                host, port, workers, access_log, executor or self.executor, start_method,
                _ssl_context(ssl, certfile, keyfile), uds, fd, supervision))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()

    def _supervise(self, host, port, uds, fd, processes, reload):
        """The supervisor's side of run(processes=N) / run(reload=True)."""
        command = _child_command()          # fails early where children cannot be started
        sockets = _listening_sockets(host, port, uds, fd, processes)
        roots = (_source_roots(self) or [os.getcwd()]) if reload else None
        if uds is not None:
            where = f"unix:{uds}"
        elif fd is not None:
            where = f"fd {fd}"
        else:
            address = sockets[0].getsockname()
            where = f"{host}:{address[1]}"
        log.info("pixie_web %s supervising %d serving process%s on %s%s",
                 __version__, processes, "" if processes == 1 else "es", where,
                 f", reloading on changes under {', '.join(roots)}" if roots else "")
        status = _Supervisor(processes, sockets, self.shutdown_timeout, roots,
                             command).run()
        if status:
            raise SystemExit(status)

    async def _serve(self, host, port, workers, access_log, executor, start_method,
                     ssl_context, uds=None, fd=None, supervision=None):
        loop = asyncio.get_running_loop()
        server = _Server(self, loop, access_log, "https" if ssl_context else "http")
        await server.start(workers, start_method, executor)
        factory = functools.partial(_TimedHTTPProtocol if self.debug else HTTPProtocol,
                                    server)
        if uds is not None:
            if os.path.exists(uds) and stat.S_ISSOCK(os.stat(uds).st_mode):
                os.unlink(uds)              # a stale socket left by an earlier run
            listener = await loop.create_unix_server(factory, uds, ssl=ssl_context,
                                                     backlog=1024)
            where = f"unix:{uds}"
        elif fd is not None:
            listening = socket.socket(fileno=fd)
            listener = await loop.create_server(factory, sock=listening, ssl=ssl_context,
                                                backlog=1024)
            where = f"fd {fd} ({listening.getsockname()})"
        else:
            listener = await loop.create_server(factory, host, port, ssl=ssl_context,
                                                backlog=1024, reuse_address=True)
            where = f"{'https' if ssl_context else 'http'}://{host}:{port}"
        stop = asyncio.Event()

        def on_signal():
            if stop.is_set():
                log.warning("stopping now, without waiting for requests")
                server.hurry = True
            stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        if supervision is not None:
            where = f"{where}, slot {supervision.slot} of {supervision.processes}"

            def on_supervisor_gone():       # its end of the lifeline pipe closed
                loop.remove_reader(supervision.lifeline_fd)
                log.warning("the supervisor has gone: stopping")
                stop.set()
            loop.add_reader(supervision.lifeline_fd, on_supervisor_gone)
            os.write(supervision.ready_fd, b"1")
            os.close(supervision.ready_fd)
        if not self._routes:
            log.warning("this app has no routes: every request will get 404. Routes made "
                        "with the module-level @route belong to the default app, served by "
                        "run(); routes made with @app.route are served by run(app=app) "
                        "or app.run()")
        log.info("pixie_web %s serving on %s (accelerators: %s; pool: %s)",
                 __version__, where, ", ".join(ACCELERATORS) or "none",
                 f"{server.pool.workers} workers" if server.pool and server.pool.workers
                 else "external executor" if server.pool
                 else "off" if workers == 0 else "started at the first in_pool")
        try:
            await stop.wait()
        finally:
            log.info("shutting down (up to %gs for requests in flight; "
                     "press Ctrl+C again to stop at once)", self.shutdown_timeout)
            listener.close()        # refuse new connections at once
            await server.stop()


def _default_logging(with_pid=False):
    """Unless the user configured logging: errors and warnings, with their tracebacks, to
    stderr, and the access log to stdout, one readable line each (with the process id when
    several processes share the terminal)."""
    if logging.getLogger().handlers or log.handlers:
        return
    errors = logging.StreamHandler(sys.stderr)
    errors.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s" + ("[%(process)d]" if with_pid else "") +
        ": %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(errors)
    log.setLevel(logging.INFO)
    requests = logging.StreamHandler(sys.stdout)
    requests.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(requests)
    access_log.propagate = False        # not twice: the line is already on stdout


def _ssl_context(ssl_context, certfile, keyfile):
    if ssl_context is not None or certfile is None:
        return ssl_context
    import ssl as ssl_module
    context = ssl_module.create_default_context(ssl_module.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


def _called_from_pool_import():
    """True when run() is reached while a spawn/forkserver worker re-imports the main script."""
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_globals.get("__name__") == "__mp_main__":
            return True
        frame = frame.f_back
    return False


# ---- Test client -----------------------------------------------------------------------------

class _MemoryTransport:
    """The transport a TestClient connection writes into."""

    def __init__(self, loop):
        self.output = bytearray()
        self.closed = loop.create_future()
        self._loop = loop
        self._protocol = None
        self._written = None        # a future woken by the next write (WebSocket tests)

    def write(self, data):
        if not self.closed.done():
            self.output += data
            if self._written is not None and not self._written.done():
                self._written.set_result(None)

    async def more_output(self):
        """Wait until something more is written, or the connection closes."""
        self._written = self._loop.create_future()
        await asyncio.wait([self._written, self.closed], return_when=asyncio.FIRST_COMPLETED)

    def set_protocol(self, protocol):
        self._protocol = protocol

    def writelines(self, chunks):
        for chunk in chunks:
            self.write(chunk)

    def close(self):
        if not self.closed.done():
            self.closed.set_result(None)
            self._loop.call_soon(self._protocol.connection_lost, None)

    abort = close

    def is_closing(self):
        return self.closed.done()

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 50000) if name == "peername" else default

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def get_write_buffer_size(self):
        return 0


class TestWebSocket:
    """What ``TestClient.websocket_connect`` gives (a context manager): the client end of a
    WebSocket, through the server's real handshake, protocol and frame codec."""

    __test__ = False

    def __init__(self, client, transport, codec, subprotocol, extensions):
        self._client = client
        self._transport = transport
        self._codec = codec
        self._messages = deque()
        self.subprotocol = subprotocol      # the one the server chose
        self.extensions = extensions        # its Sec-WebSocket-Extensions answer
        self.close_code = None
        self.close_reason = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _run(self, awaitable):
        return self._client._loop.run_until_complete(awaitable)

    def _write(self, data):
        async def deliver():
            self._transport._protocol.data_received(data)
            await asyncio.sleep(0)              # let the handler take a step
        self._run(deliver())

    def send_text(self, text):
        self._write(self._codec.send_text(text))

    def send_bytes(self, data):
        self._write(self._codec.send_bytes(bytes(data)))

    def send_json(self, value):
        self.send_text(json_dumps(value).decode("utf-8"))

    def receive(self, timeout=10.0):
        """The next message from the server (str or bytes); WebSocketClosed once it closed;
        TimeoutError after ``timeout`` seconds."""
        return self._run(asyncio.wait_for(self._next_message(), timeout))

    def receive_text(self, timeout=10.0):
        message = self.receive(timeout)
        if not isinstance(message, str):
            raise TypeError("expected a text message, got a binary one")
        return message

    def receive_bytes(self, timeout=10.0):
        message = self.receive(timeout)
        if not isinstance(message, bytes):
            raise TypeError("expected a binary message, got a text one")
        return message

    def receive_json(self, timeout=10.0):
        return json_loads(self.receive(timeout))

    async def _next_message(self):
        while not self._messages:
            if self.close_code is not None:
                raise WebSocketClosed(self.close_code, self.close_reason)
            await self._read()
        return self._messages.popleft()

    async def _read(self):
        """Take what the server wrote; wait for more when there is nothing."""
        transport = self._transport
        if not transport.output:
            if transport.closed.done():
                self.close_code = self.close_code or _ABNORMAL_CLOSURE
                return
            await transport.more_output()
            return
        data = bytes(transport.output)
        transport.output.clear()
        for event in self._codec.receive(data):
            kind = type(event)
            if kind is TextMessage or kind is BinaryMessage:
                self._messages.append(event.data)
            elif kind is Ping:
                transport._protocol.data_received(self._codec.send_pong(event.payload))
            elif kind is not Pong:         # the server's close, or a violation of its own
                if self.close_code is None:
                    self.close_code, self.close_reason = event.code, event.reason
                if self._codec.state is not WebSocketState.CLOSED:
                    transport._protocol.data_received(self._codec.send_close())

    def close(self, code=1000, reason="", timeout=10.0):
        """Close (if the server has not), and wait for the server to close the connection."""
        if self._codec.state is WebSocketState.OPEN:
            self._transport._protocol.data_received(self._codec.send_close(code, reason))
            self.close_code = self.close_code or code

        async def closed():
            while not self._transport.closed.done():
                await self._read()
        self._run(asyncio.wait_for(closed(), timeout))


class TestResponse:
    """What TestClient returns: ``.status``, ``.headers``, ``.body``, ``.text``, ``.json()``."""

    __test__ = False   # not a pytest test class

    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    status_code = property(lambda self: self.status)
    content = property(lambda self: self.body)

    @property
    def text(self):
        _, options = _parse_media_type(self.headers.get("Content-Type", ""))
        return self.body.decode(options.get("charset") or "utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<TestResponse {self.status}>"


def _parse_response_bytes(raw, method="GET"):
    """Parse one HTTP/1.1 response (as the server wrote it) into a TestResponse."""
    head, _, rest = bytes(raw).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    _, status, reason = lines[0].decode("latin-1").split(" ", 2)
    headers = Headers()
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers.add(name, value.strip())
    if method == "HEAD" or int(status) in (204, 304):
        body = b""
    elif headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts = []
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16) if size_line else 0
            if size == 0:
                break
            parts.append(rest[:size])
            rest = rest[size + 2:]
        body = b"".join(parts)
    elif "Content-Length" in headers:
        body = rest[:int(headers["Content-Length"])]
    else:
        body = rest
    return TestResponse(int(status), reason, headers, body)


def _encode_multipart(fields, files):
    import secrets
    boundary = "pixie-web-" + secrets.token_hex(16)
    parts = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     .encode() + str(value).encode() + b"\r\n")
    for name, spec in files:
        filename, data, content_type = (tuple(spec) + ("application/octet-stream",))[:3]
        if isinstance(data, str):
            data = data.encode()
        elif hasattr(data, "read"):
            data = data.read()
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
                     + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class TestClient:
    """Call an app without a network: requests go through the real HTTP/1.1 parser and
    dispatcher (pool routes included) over an in-memory transport.

    Use ``with TestClient(app) as client:`` so startup/shutdown hooks run and the pool stops.
    """

    __test__ = False

    def __init__(self, app, workers=2, start_method=None, host="testserver"):
        self.app = app
        self.workers = workers
        self.start_method = start_method
        self.host = host
        self.cookies = {}
        self._loop = None
        self._server = None

    def __enter__(self):
        self._start()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _start(self):
        if self._server is not None:
            return
        self._check_not_started_at_import()
        self._loop = _new_event_loop()
        self._server = _Server(self.app, self._loop)
        self._loop.run_until_complete(self._server.start(
            self.workers, self.start_method, self.app.executor))

    def _check_not_started_at_import(self):
        """One clear error instead of multiprocessing's bootstrapping traceback, when a
        script uses a TestClient with pool routes outside ``if __name__ == "__main__":``."""
        if (self.workers == 0 or self.app.executor is not None
                or _pool_start_method(self.start_method) == "fork"
                or not any(route.route_type is RouteType.pool for route in self.app.routes())):
            return
        where = _unguarded_main_line()
        if where is not None:
            raise RuntimeError(
                f"{where[0]}, line {where[1]}: a TestClient for an app with pool routes is "
                f"used at the top level of the script. Pool workers import the script "
                f"again, so this line would run again in each of them. Put the code that "
                f"uses the TestClient under `if __name__ == \"__main__\":`.")

    def close(self):
        """Run shutdown hooks and stop the pool."""
        if self._server is None:
            return
        try:
            self._loop.run_until_complete(self._server.stop())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            self._loop.close()
            self._server = self._loop = None

    def request(self, method, path, params=None, data=None, json=None, files=None,
                headers=None, cookies=None):
        """Send one request and return a TestResponse."""
        self._start()
        method = method.upper()
        if params:
            path += ("&" if "?" in path else "?") + urlencode(
                list(params.items()) if hasattr(params, "items") else params, doseq=True)
        request_headers = Headers([("Host", self.host), ("User-Agent", "pixie-web-testclient")])
        body = b""
        if json is not None:
            body = json_dumps(json)
            request_headers["Content-Type"] = "application/json"
        elif files:
            fields = list(data.items()) if hasattr(data, "items") else list(data or ())
            body, content_type = _encode_multipart(fields, list(files.items()))
            request_headers["Content-Type"] = content_type
        elif isinstance(data, (dict, list, tuple)):
            body = urlencode(list(data.items()) if isinstance(data, dict) else data).encode()
            request_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif data is not None:
            body = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        for name, value in (headers.items() if hasattr(headers, "items") else headers or ()):
            request_headers[name] = value
        all_cookies = {**self.cookies, **(cookies or {})}
        if all_cookies:
            request_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in all_cookies.items())
        if body or method in ("POST", "PUT", "PATCH"):
            request_headers["Content-Length"] = str(len(body))
        request_headers["Connection"] = "close"
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in request_headers.items()) + "\r\n"
        raw = self._loop.run_until_complete(self._exchange(head.encode("latin-1") + body))
        response = _parse_response_bytes(raw, method)
        self._keep_cookies(response)
        return response

    async def _exchange(self, raw):
        _date_cache.get()     # no tick ran while the client's loop was stopped
        transport = _MemoryTransport(self._loop)
        protocol = HTTPProtocol(self._server)
        transport._protocol = protocol
        protocol.connection_made(transport)
        protocol.data_received(raw)
        await transport.closed
        return transport.output

    def websocket_connect(self, path, subprotocols=None, headers=None):
        """Open a WebSocket to ``path`` (``with client.websocket_connect("/chat") as ws:``)
        through the real handshake: a TestWebSocket; HTTPError when the server answers with
        anything but 101 (its status and body)."""
        self._start()
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        fields = Headers([("Host", self.host), ("Upgrade", "websocket"),
                          ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
                          ("Sec-WebSocket-Version", "13")])
        if subprotocols:
            fields["Sec-WebSocket-Protocol"] = ", ".join(subprotocols)
        if self.cookies:
            fields["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for name, value in (headers.items() if hasattr(headers, "items") else headers or ()):
            fields[name] = value
        head = f"GET {path} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in fields.items()) + "\r\n"
        transport, raw = self._loop.run_until_complete(
            self._handshake(head.encode("latin-1")))
        response = _parse_response_bytes(raw)
        if response.status != 101:
            transport.close()
            raise HTTPError(response.status, response.text)
        if response.headers.get("Sec-WebSocket-Accept") != websocket_accept_key(key):
            raise RuntimeError("the server's Sec-WebSocket-Accept does not match the key")
        answer = response.headers.get("Sec-WebSocket-Extensions")
        deflate = None
        if answer is not None:
            (_, parameters), = _parse_extensions([answer])
            deflate = _accept_deflate_offer(parameters)
        codec = WebSocketConnection(2 ** 63, deflate, client=True)
        websocket = TestWebSocket(self, transport, codec,
                                  response.headers.get("Sec-WebSocket-Protocol"), answer)
        transport.output[:0] = raw[raw.index(b"\r\n\r\n") + 4:]   # frames after the head
        return websocket

    async def _handshake(self, raw):
        """Send a handshake; ``(transport, bytes through the end of the answer's head and
        its body when it is not a 101)``."""
        _date_cache.get()
        transport = _MemoryTransport(self._loop)
        protocol = HTTPProtocol(self._server)
        transport._protocol = protocol
        protocol.connection_made(transport)
        protocol.data_received(raw)
        while True:
            output = bytes(transport.output)
            end = output.find(b"\r\n\r\n")
            if end >= 0:
                answer = _parse_response_bytes(output)
                length = int(answer.headers.get("Content-Length", "0"))
                if answer.status == 101 or len(output) >= end + 4 + length:
                    transport.output.clear()
                    return transport, output
            if transport.closed.done():
                raise ConnectionError("the server closed the connection during the handshake")
            await transport.more_output()

    def _keep_cookies(self, response):
        """Remember cookies the app set (sent back as received); Max-Age=0 deletes one."""
        for header in response.headers.getall("Set-Cookie"):
            pair, *attributes = header.split(";")
            name, _, value = pair.strip().partition("=")
            if any(attribute.strip().lower() == "max-age=0" for attribute in attributes):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def head(self, path, **kwargs):
        return self.request("HEAD", path, **kwargs)

    def options(self, path, **kwargs):
        return self.request("OPTIONS", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path, **kwargs):
        return self.request("PUT", path, **kwargs)

    def patch(self, path, **kwargs):
        return self.request("PATCH", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


# ---- CLI and default app ---------------------------------------------------------------------

def load_app(target):
    """Import ``"package.module:attribute"`` and return that App.

    Without ``:attribute``: the module's ``app`` when it is an App, else its ``default_app``
    (where the module-level ``@route`` registers), so a script written with ``@route`` runs
    from the command line too."""
    module_name, _, attribute = target.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    if attribute:
        app = getattr(module, attribute, None)
        if not isinstance(app, App):
            raise LookupError(f"{target!r}: {attribute} is not a pixie_web App")
        return app
    app = getattr(module, "app", None)
    if isinstance(app, App):
        return app
    app = getattr(module, "default_app", default_app)
    if not isinstance(app, App) or not app.routes():
        raise LookupError(f"{target!r}: the module has no App named app and registered no "
                          f"routes with the module-level @route; name the app: "
                          f"{module_name}:ATTRIBUTE")
    return app


def format_routes(app):
    """The route table as text, one route per line."""
    rows = [("METHOD", "PATH", "TYPE", "NAME")] + [
        (route.method, route.path, route.route_type.name, route.name or "")
        for route in app.routes()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{m:<{widths[0]}}  {p:<{widths[1]}}  {t:<{widths[2]}}  {n}".rstrip()
                     for m, p, t, n in rows)


def _run_arguments(parser):
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=None,
                        help="pool size (default: CPU count; 0: no pool)")
    parser.add_argument("--debug", action="store_true", help="tracebacks in 500 pages")
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    parser.add_argument("--uds", metavar="PATH", help="listen on a Unix socket instead")
    parser.add_argument("--fd", type=int, metavar="N",
                        help="serve on an inherited listening socket (systemd: 3)")
    parser.add_argument("--processes", type=int, default=1, metavar="N",
                        help="serving processes sharing the port, under a supervisor")
    parser.add_argument("--reload", action="store_true",
                        help="restart when a source file or template changes")


def _serve_with_options(app, options):
    app.run(host=options.host, port=options.port, workers=options.workers,
            debug=options.debug or None, access_log=not options.no_access_log,
            certfile=options.certfile, keyfile=options.keyfile, uds=options.uds,
            fd=options.fd, processes=options.processes, reload=options.reload)


def _add_command(subparsers, name, function):
    """An argparse sub-command made from a function's signature and docstring."""
    import argparse
    try:
        signature = inspect.signature(function, eval_str=True)
    except (NameError, TypeError):           # an annotation that does not evaluate
        signature = inspect.signature(function)
    doc = inspect.getdoc(function) or ""
    parser = subparsers.add_parser(name, help=doc.splitlines()[0] if doc else None,
                                   description=doc or None)
    for parameter in signature.parameters.values():
        default, annotation = parameter.default, parameter.annotation
        empty = inspect.Parameter.empty
        kind = annotation if annotation is not empty else (
            type(default) if default not in (empty, None) else str)
        convert = kind if kind in (int, float, str) or isinstance(kind, type) else str
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            parser.add_argument(parameter.name, nargs="*", type=convert)
        elif default is empty:
            parser.add_argument(parameter.name, type=convert)
        elif kind is bool:
            parser.add_argument("--" + parameter.name.replace("_", "-"), dest=parameter.name,
                                action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument("--" + parameter.name.replace("_", "-"), dest=parameter.name,
                                type=convert, default=default,
                                help=f"default: {default!r}")
    parser.set_defaults(_function=function, _signature=signature)


def _cli(app, argv, prog=None):
    """What ``app.cli()`` runs; the exit status."""
    import argparse
    parser = argparse.ArgumentParser(prog=prog, description=(
        "Commands of this app; without one, it is served (run)."))
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _run_arguments(subparsers.add_parser("run", help="serve the app (the default)"))
    subparsers.add_parser("routes", help="list the routes")
    for name, function in app._commands.items():
        _add_command(subparsers, name, function)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["run", *argv]
    options = parser.parse_args(argv)
    if options.command == "run":
        _serve_with_options(app, options)
        return 0
    if options.command == "routes":
        print(format_routes(app))
        return 0
    function, signature = options._function, options._signature
    arguments, keywords = [], {}
    for parameter in signature.parameters.values():
        value = getattr(options, parameter.name)
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            arguments.extend(value)
        elif parameter.default is inspect.Parameter.empty:
            arguments.append(value)
        else:
            keywords[parameter.name] = value
    try:
        result = function(*arguments, **keywords)
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
    except Exception as error:
        print(f"{parser.prog} {options.command}: error: {error}", file=sys.stderr)
        return 1
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    if result is not None:
        print(result)
    return 0


async def _awaited(awaitable):
    return await awaitable


def main(argv=None):
    """``python -m pixie_web [routes] module:app [--host --port --workers --debug ...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        print(f"pixie_web {__version__}")
        return 0
    import argparse
    listing = argv[:1] == ["routes"]
    if listing:
        argv = argv[1:]
    parser = argparse.ArgumentParser(
        prog="python -m pixie_web" + (" routes" if listing else ""),
        description="List the routes of a pixie_web app." if listing else (
            "Serve a pixie_web app.\n\ncommands:\n"
            "  python -m pixie_web MODULE[:APP] [options]   serve the app\n"
            "  python -m pixie_web routes MODULE[:APP]      list its routes"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", metavar="MODULE[:APP]",
                        help="e.g. myapp:app; without :APP, the module's app, else the "
                             "routes its module-level @route registered")
    if not listing:
        _run_arguments(parser)
        parser.add_argument("--version", action="version", version=f"pixie_web {__version__}")
    options = parser.parse_args(argv)
    try:
        app = load_app(options.target)
    except (ImportError, LookupError, AttributeError) as error:
        print(f"pixie_web: cannot load {options.target!r}: {error}", file=sys.stderr)
        return 2
    if listing:
        print(format_routes(app))
        return 0
    _serve_with_options(app, options)
    return 0


#: The app behind the module-level shortcuts (``route``, ``run``, ...), as in bottle.
default_app = App()
route = default_app.route
get = default_app.get
post = default_app.post
put = default_app.put
patch = default_app.patch
delete = default_app.delete
error = default_app.error
mount = default_app.mount
websocket = default_app.websocket
static = default_app.static
resource = default_app.resource
url_for = default_app.url_for
before_request = default_app.before_request
after_request = default_app.after_request
middleware = default_app.middleware
on_startup = default_app.on_startup
on_shutdown = default_app.on_shutdown
install = default_app.install


def run(app=None, **settings):
    """Serve ``app`` (default: ``default_app``, where the module-level ``@route`` registers)
    until SIGINT/SIGTERM; ``settings`` are those of ``App.run``. Example::

        app = App()

        @app.route("/")
        def index(request):
            return "Hello"

        run(app=app, port=8080)
    """
    if app is None:
        app = default_app
    elif not isinstance(app, App):
        raise TypeError(f"run(app=...) takes a pixie_web App, not {app!r}; give host, port "
                        f"and the other settings as keywords: run(app=app, port=8080)")
    return app.run(**settings)


if __name__ == "__main__":
    # Delegate to the importable module so the app and the CLI share one copy of the classes.
    sys.exit(importlib.import_module("pixie_web").main())
