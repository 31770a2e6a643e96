"""Static files (SECURITY.md classes D and C4) against ``app.static``, ``static_file`` and
``cached_file`` on real servers in both parser modes (tests/apps/essentials_app.py:static_app).

The served tree is built in a tmp dir per test module (symlinks, a sibling ``static_secret.txt``,
files named like Windows devices, a 20 MB file).  Traversal attempts are sent as raw bytes so no
client normalises them first.
"""
import hashlib
import os
import re
import time
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import quote

import pytest
import requests

from tests.support import raw_exchange, split_reply

TARGET = "tests.apps.essentials_app:static_app"
HELLO = b"Hello, static world!\n"
SECRET = b"TOP-SECRET-OUTSIDE-THE-ROOT\n"
SIBLING_SECRET = b"SIBLING-PREFIX-SECRET\n"
RANGE_DATA = b"0123456789" * 10
BIG_SIZE = 20 * 1024 * 1024
DEVICE_NAMES = ["CON", "NUL.txt", "con", "COM1", "LPT1.log", "aux.html", "PRN"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """base/static (the root), base/static_secret.txt and base/static1/ (sibling prefixes),
    base/outside/ (symlink targets)."""
    base = tmp_path_factory.mktemp("static-tree")
    root = base / "static"
    (root / "sub").mkdir(parents=True)
    (root / "emptydir").mkdir()
    (root / "a").mkdir()
    (root / "hello.txt").write_bytes(HELLO)
    (root / "page.html").write_bytes(b"<h1>page</h1>\n")
    (root / "data.json").write_bytes(b'{"a": 1}\n')
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (root / "unknown.zzqx").write_bytes(b"?")
    (root / "sub" / "nested.txt").write_bytes(b"nested\n")
    (root / "range.txt").write_bytes(RANGE_DATA)
    for name in DEVICE_NAMES:
        (root / name).write_bytes(b"device-named file\n")
    (root / "a" / "AUX").write_bytes(b"device-named file\n")
    with open(root / "big.bin", "wb") as big:
        for _ in range(BIG_SIZE // (1024 * 1024)):
            big.write(os.urandom(1024 * 1024))
    (base / "static_secret.txt").write_bytes(SIBLING_SECRET)
    (base / "static1").mkdir()
    (base / "static1" / "x.txt").write_bytes(SIBLING_SECRET)
    (base / "outside").mkdir()
    (base / "outside" / "secret.txt").write_bytes(SECRET)
    os.symlink("hello.txt", root / "link_inside.txt")
    os.symlink(base / "outside" / "secret.txt", root / "link_secret.txt")
    os.symlink(base / "outside", root / "link_dir")
    return root


@pytest.fixture(scope="module")
def servers(tree, shared_server):
    return lambda mode: shared_server(TARGET, mode, env={"ESSENTIALS_STATIC_ROOT": str(tree)})


@pytest.fixture(scope="module", params=["pure", "accelerated"])
def server(request, servers):
    return servers(request.param)


# ---- helpers ----------------------------------------------------------------------------------

def fetch(server, target, method="GET", headers=()):
    """Send ``target`` exactly as given (bytes or str) and return the reply (its body as sent)."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    head = method.encode() + b" " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    for name, value in headers:
        head += f"{name}: {value}\r\n".encode("latin-1")
    reply = split_reply(raw_exchange(server.port, head + b"\r\n", timeout=15))
    assert reply is not None, f"no answer to {target!r}"
    return reply


def missing(server):
    """The reply for a file that simply does not exist (the reference for traversal)."""
    return fetch(server, "/static/no-such-file.txt")


def assert_same_as_missing(server, target):
    # D7 (aiohttp CVE-2025-69226): no existence oracle.
    reply, reference = fetch(server, target), missing(server)
    assert reference.status == 404
    assert (reply.status, reply.body) == (reference.status, reference.body), target
    for secret in (SECRET, SIBLING_SECRET, b"root:"):
        assert secret not in reply.raw


# ---- serving ----------------------------------------------------------------------------------

def test_serves_a_file_with_its_headers(server, tree):
    reply = fetch(server, "/static/hello.txt")
    assert reply.status == 200
    assert reply.body == HELLO
    assert reply.header("Content-Type") == "text/plain; charset=utf-8"
    assert reply.header("Content-Length") == str(len(HELLO))
    assert re.fullmatch(r'(W/)?"[^"]+"', reply.header("ETag"))
    mtime = os.stat(tree / "hello.txt").st_mtime
    assert reply.header("Last-Modified") == formatdate(int(mtime), usegmt=True)
    assert reply.header("Accept-Ranges") == "bytes"
    assert reply.header("Cache-Control") == "public, max-age=3600"
    assert reply.header("Date")


@pytest.mark.parametrize("name, expected", [
    ("page.html", "text/html"),
    ("data.json", "application/json"),
    ("image.png", "image/png"),
    ("unknown.zzqx", "application/octet-stream"),
])
def test_content_type_is_guessed_from_the_name(server, name, expected):
    reply = fetch(server, "/static/" + name)
    assert reply.status == 200
    media_type, _, parameters = reply.header("Content-Type").partition(";")
    assert media_type == expected
    if expected.startswith("text/"):
        assert parameters.strip() == "charset=utf-8"


def test_mimetype_argument_overrides_the_guess(server):
    reply = fetch(server, "/typed/hello.txt")
    assert reply.status == 200
    assert reply.header("Content-Type").split(";")[0] == "text/x-custom"


def test_static_file_sends_cache_control_only_with_max_age(server):
    reply = fetch(server, "/plain/hello.txt")
    assert reply.status == 200 and reply.body == HELLO
    assert reply.header("Cache-Control") is None


def test_nested_file_and_symlink_inside_the_root_are_served(server):
    assert fetch(server, "/static/sub/nested.txt").body == b"nested\n"
    reply = fetch(server, "/static/link_inside.txt")
    assert (reply.status, reply.body) == (200, HELLO)


@pytest.mark.parametrize("target", ["/static/sub", "/static/sub/", "/static/emptydir",
                                    "/static/link_dir", "/static/link_dir/"])
def test_directories_are_404_without_a_listing(server, target):
    reply = fetch(server, target)
    assert reply.status == 404
    assert b"nested" not in reply.body and b"secret" not in reply.body


def test_missing_file_is_404(server):
    reply = missing(server)
    assert reply.status == 404
    assert reply.body.startswith(b"404 Not Found")


def test_head_has_the_get_headers_and_no_body(server):
    get_reply = fetch(server, "/static/hello.txt")
    head_reply = fetch(server, "/static/hello.txt", method="HEAD")
    assert head_reply.status == 200
    assert head_reply.body == b""
    for name in ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Accept-Ranges"):
        assert head_reply.header(name) == get_reply.header(name), name


def test_large_file_round_trips_intact(server, tree):
    expected = hashlib.sha256((tree / "big.bin").read_bytes()).hexdigest()
    for prefix in ("/static/", "/static-cached/"):
        digest, size = hashlib.sha256(), 0
        with requests.get(server.url + prefix + "big.bin", stream=True, timeout=60) as response:
            assert response.status_code == 200
            assert response.headers["Content-Length"] == str(BIG_SIZE)
            for chunk in response.iter_content(1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
        assert (size, digest.hexdigest()) == (BIG_SIZE, expected), prefix


# ---- traversal (SECURITY.md, classes D) -------------------------------------------------------

@pytest.mark.parametrize("target", [
    "/static/../../../../etc/passwd",
    "/static/../../../../../../../../../../etc/passwd",
    "/static/./../static_secret.txt",
    "/static/sub/../../static_secret.txt",
])
def test_raw_dot_dot_never_leaves_the_root(server, target):
    # D1 (aiohttp CVE-2024-23334), sent raw like curl --path-as-is.
    assert_same_as_missing(server, target)


@pytest.mark.parametrize("target", [
    "/static/..%2f..%2f..%2f..%2fetc/passwd",
    "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/.%2e/static_secret.txt",
    "/static/%2e%2e%2fstatic_secret.txt",
    "/static/%252e%252e%252fstatic_secret.txt",
    "/static/..%252f..%252f..%252f..%252fetc%252fpasswd",
])
def test_encoded_traversal_never_leaves_the_root(server, target):
    # D2 (Sanic PR #2495): decoded once, never twice.
    assert_same_as_missing(server, target)


def test_overlong_utf8_dots_are_refused(server):
    # D2: %c0%ae is not UTF-8 (the decision for /%ff applies).
    reply = fetch(server, "/static/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd")
    assert reply.status == 400
    assert b"root:" not in reply.raw


@pytest.mark.parametrize("target", [
    b"/static/..\\..\\..\\..\\etc\\passwd",
    b"/static/a%5c..%5c..%5cstatic_secret.txt",
    b"/static/%5c%5chost%5cshare%5cx",
    b"/static/C:%5cx",
    b"/static/C:/x",
    b"/static/hello.txt:stream",
])
def test_backslashes_and_colons_are_refused_with_400(server, target):
    # D3 (Sanic PR #2495, werkzeug GHSA-f9vj-2wh5-fj8j): refused on every OS.
    reply = fetch(server, target)
    assert reply.status == 400
    assert SIBLING_SECRET not in reply.raw


@pytest.mark.parametrize("target", [
    "/static/../static_secret.txt",
    "/static/../static1/x.txt",
    "/static/%2e%2e/static_secret.txt",
])
def test_sibling_directory_with_the_same_prefix_is_outside(server, target):
    # D4 (Starlette CVE-2023-29159, commonprefix).
    assert_same_as_missing(server, target)


@pytest.mark.parametrize("target", ["/static//etc/passwd", "/static/%2fetc/passwd",
                                    "/static/%2Fetc%2Fpasswd", "/static///etc/passwd"])
def test_absolute_paths_are_refused(server, target):
    # D5 (python-multipart CVE-2026-24486, werkzeug safe_join).
    assert_same_as_missing(server, target)


@pytest.mark.parametrize("target", ["/static/link_secret.txt", "/static/link_dir/secret.txt"])
def test_symlinks_out_of_the_root_are_refused_by_default(server, target):
    # D6 (aiohttp symlink history, Sanic #3117).
    assert_same_as_missing(server, target)


def test_symlinks_out_of_the_root_are_followed_when_allowed(server):
    # D6: follow_symlinks=True is the explicit opt-in; `..` is still refused.
    assert fetch(server, "/follow/link_secret.txt").body == SECRET
    assert fetch(server, "/follow/link_dir/secret.txt").body == SECRET
    reply = fetch(server, "/follow/../static_secret.txt")
    assert reply.status == 404 and SIBLING_SECRET not in reply.raw


def test_traversal_and_missing_answers_are_identical(server):
    # D7 (aiohttp CVE-2025-69226): existing vs non-existing targets outside the root.
    pairs = [("/static/../../../../etc/passwd", "/static/../../../../etc/no-such-file"),
             ("/static/../static_secret.txt", "/static/../static_nothing.txt"),
             ("/static/link_secret.txt", "/static/no-such-link.txt")]
    for existing, absent in pairs:
        first, second = fetch(server, existing), fetch(server, absent)
        reference = missing(server)
        assert (first.status, first.body) == (second.status, second.body) == (404, reference.body)


@pytest.mark.parametrize("name", DEVICE_NAMES + ["a/AUX"])
def test_windows_device_names_are_404_even_when_the_file_exists(server, name):
    # D8 (werkzeug GHSA-hgf8-39gv-g3f2 and friends).
    assert_same_as_missing(server, "/static/" + name)


@pytest.mark.parametrize("target", ["/static/a%00.txt", "/static/hello.txt%00.png",
                                    "/static/%01hello.txt", "/static/hello%0a.txt",
                                    "/static/hello.txt%7f"])
def test_nul_and_control_characters_are_400(server, target):
    # D9 (open() raises ValueError on NUL): 400, never 500.
    reply = fetch(server, target)
    assert reply.status == 400
    assert server.alive()


# ---- ranges (D10) -----------------------------------------------------------------------------

@pytest.mark.parametrize("spec, first, last", [
    ("bytes=0-4", 0, 4), ("bytes=95-", 95, 99), ("bytes=-5", 95, 99), ("bytes=10-10", 10, 10),
    ("bytes=0-99999999999", 0, 99), ("bytes=98-200", 98, 99),
])
def test_single_range_gives_206(server, spec, first, last):
    reply = fetch(server, "/static/range.txt", headers=[("Range", spec)])
    assert reply.status == 206
    assert reply.body == RANGE_DATA[first:last + 1]
    assert reply.header("Content-Range") == f"bytes {first}-{last}/{len(RANGE_DATA)}"
    assert reply.header("Content-Length") == str(last - first + 1)


@pytest.mark.parametrize("spec", ["bytes=100-", "bytes=1000-2000", "bytes=-0"])
def test_unsatisfiable_range_gives_416(server, spec):
    reply = fetch(server, "/static/range.txt", headers=[("Range", spec)])
    assert reply.status == 416
    assert reply.header("Content-Range") == f"bytes */{len(RANGE_DATA)}"


@pytest.mark.parametrize("spec", ["bytes=abc", "bytes=", "items=0-5", "bytes=0-0,2-2",
                                  "bytes=0-4,10-14", "bytes=--5", "bytes=1-2-3", "0-5"])
def test_several_or_malformed_ranges_give_the_full_body(server, spec):
    reply = fetch(server, "/static/range.txt", headers=[("Range", spec)])
    assert reply.status == 200
    assert reply.body == RANGE_DATA
    assert reply.header("Content-Range") is None


def test_backwards_range_is_ignored_or_refused(server):
    # D10 `bytes=5-1`: RFC 9110 §14.1.1 makes it invalid; a server may ignore (200) or refuse.
    reply = fetch(server, "/static/range.txt", headers=[("Range", "bytes=5-1")])
    assert reply.status in (200, 416)
    if reply.status == 200:
        assert reply.body == RANGE_DATA
    else:
        assert reply.header("Content-Range") == f"bytes */{len(RANGE_DATA)}"


def test_thousands_of_ranges_are_handled_in_linear_time(server):
    # D10 (Starlette CVE-2025-62727, quadratic range merging).
    def timed(count):
        spec = "bytes=" + ",".join(f"{2 * i}-{2 * i}" for i in range(count))
        start = time.perf_counter()
        reply = fetch(server, "/static/big.bin", method="HEAD", headers=[("Range", spec)])
        return time.perf_counter() - start, reply

    small = max(min(timed(2_000)[0] for _ in range(3)), 0.005)
    large, reply = timed(20_000)
    assert reply.status == 200
    assert reply.header("Content-Length") == str(BIG_SIZE)
    assert large <= 40 * small, f"10x the ranges took {large / small:.1f}x the time"


def test_range_in_a_large_file(server, tree):
    start, end = 10_000_000, 10_999_999
    with open(tree / "big.bin", "rb") as big:
        big.seek(start)
        expected = big.read(end - start + 1)
    response = requests.get(server.url + "/static/big.bin", timeout=30,
                            headers={"Range": f"bytes={start}-{end}"})
    assert response.status_code == 206
    assert response.content == expected
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{BIG_SIZE}"


def test_if_range_with_the_current_etag_gives_the_range(server):
    etag = fetch(server, "/static/range.txt").header("ETag")
    reply = fetch(server, "/static/range.txt", headers=[("Range", "bytes=0-4"), ("If-Range", etag)])
    assert (reply.status, reply.body) == (206, b"01234")


def test_if_range_with_another_etag_gives_the_full_body(server):
    reply = fetch(server, "/static/range.txt",
                  headers=[("Range", "bytes=0-4"), ("If-Range", '"not-the-etag"')])
    assert (reply.status, reply.body) == (200, RANGE_DATA)


# ---- validators and 304 -----------------------------------------------------------------------

def validators(server, target="/static/hello.txt"):
    reply = fetch(server, target)
    return reply.header("ETag"), reply.header("Last-Modified")


def strong(etag):
    return etag[2:] if etag.startswith("W/") else etag


@pytest.mark.parametrize("make_header", [
    lambda etag: etag,
    lambda etag: "W/" + strong(etag),
    lambda etag: "*",
    lambda etag: '"nope", ' + etag,
    lambda etag: '"nope",' + strong(etag) + ', "other"',
], ids=["same", "weak", "star", "list", "list-no-space"])
def test_if_none_match_gives_304(server, make_header):
    etag, _ = validators(server)
    reply = fetch(server, "/static/hello.txt", headers=[("If-None-Match", make_header(etag))])
    assert reply.status == 304
    assert reply.body == b""
    assert reply.header("ETag") == etag


def test_if_none_match_with_another_etag_gives_200(server):
    reply = fetch(server, "/static/hello.txt", headers=[("If-None-Match", '"another-etag"')])
    assert (reply.status, reply.body) == (200, HELLO)


def test_if_modified_since_at_or_after_mtime_gives_304(server):
    _, last_modified = validators(server)
    later = formatdate(parsedate_to_datetime(last_modified).timestamp() + 3600, usegmt=True)
    for value in (last_modified, later):
        reply = fetch(server, "/static/hello.txt", headers=[("If-Modified-Since", value)])
        assert (reply.status, reply.body) == (304, b""), value


def test_if_modified_since_before_mtime_gives_200(server):
    _, last_modified = validators(server)
    earlier = formatdate(parsedate_to_datetime(last_modified).timestamp() - 86400, usegmt=True)
    reply = fetch(server, "/static/hello.txt", headers=[("If-Modified-Since", earlier)])
    assert (reply.status, reply.body) == (200, HELLO)


@pytest.mark.parametrize("value", ["yesterday", "", "Thu, 99 Foo 2020 00:00:00 GMT"])
def test_malformed_if_modified_since_is_ignored(server, value):
    reply = fetch(server, "/static/hello.txt", headers=[("If-Modified-Since", value)])
    assert (reply.status, reply.body) == (200, HELLO)


def test_etag_changes_when_the_file_changes(server, tree):
    path = tree / f"etag-{server.port}.txt"
    path.write_bytes(b"first")
    os.utime(path, (1_600_000_000, 1_600_000_000))
    target = f"/static/{path.name}"
    first, _ = validators(server, target)
    os.utime(path, (1_600_000_100, 1_600_000_100))         # same size, new mtime
    second, _ = validators(server, target)
    path.write_bytes(b"first, but longer")
    os.utime(path, (1_600_000_100, 1_600_000_100))         # same mtime, new size
    third, _ = validators(server, target)
    assert len({first, second, third}) == 3
    assert fetch(server, target, headers=[("If-None-Match", first)]).status == 200


# ---- cached_file never serves stale content ---------------------------------------------------

@pytest.mark.parametrize("prefix", ["/cached/", "/static-cached/", "/static/"])
def test_changed_file_is_never_served_stale(server, tree, prefix):
    path = tree / f"changing-{server.port}-{prefix.strip('/')}.txt"
    target = prefix + path.name
    path.write_bytes(b"version one")
    os.utime(path, (1_600_000_000, 1_600_000_000))
    for _ in range(2):      # the second read comes from the cache
        assert fetch(server, target).body == b"version one"
    path.write_bytes(b"version two, longer")
    os.utime(path, (1_600_000_010, 1_600_000_010))
    assert fetch(server, target).body == b"version two, longer"
    path.write_bytes(b"version TWO, longer")                    # same size, new mtime
    os.utime(path, (1_600_000_020, 1_600_000_020))
    reply = fetch(server, target)
    assert reply.body == b"version TWO, longer"
    assert reply.header("Content-Length") == str(len(b"version TWO, longer"))


def test_cached_file_honours_ranges_and_validators(server):
    etag = fetch(server, "/cached/range.txt").header("ETag")
    assert fetch(server, "/cached/range.txt", headers=[("If-None-Match", etag)]).status == 304
    reply = fetch(server, "/cached/range.txt", headers=[("Range", "bytes=-3")])
    assert (reply.status, reply.body) == (206, b"789")


def test_cached_file_refuses_traversal_too(server):
    reply = fetch(server, "/cached/../static_secret.txt")
    assert reply.status == 404 and SIBLING_SECRET not in reply.raw
    assert fetch(server, "/cached/link_secret.txt").status == 404


# ---- downloads (C4) ---------------------------------------------------------------------------

def disposition(server, query=""):
    reply = fetch(server, "/download/hello.txt" + query)
    assert reply.status == 200, reply.raw[:300]
    assert reply.body == HELLO
    assert len(reply.values("content-disposition")) == 1
    return reply


def test_download_true_uses_the_base_name(server):
    assert disposition(server).header("Content-Disposition") == 'attachment; filename="hello.txt"'


def test_download_name_is_used(server):
    value = disposition(server, "?as=report.pdf").header("Content-Disposition")
    assert value == 'attachment; filename="report.pdf"'


QUOTED_FILENAME_RE = re.compile(
    r'attachment; filename="((?:[^"\\\x00-\x1f\x7f]|\\[^\x00-\x1f\x7f])*)"'
    r"(?:; filename\*=(?i:utf-8)''[A-Za-z0-9%!#$&+.^_`|~-]+)?")


@pytest.mark.parametrize("hostile", ['a"b.txt', "a\r\nX-Injected: 1.txt", "a\nb", "a\\b.txt",
                                     'x"; filename="evil.exe', "a\x00b", "../../etc/passwd"])
def test_hostile_download_name_is_made_safe(server, hostile):
    # C4 (aiohttp CVE-2026-34514/50269): CR/LF/quotes in the written filename. The header must
    # stay one well-formed `attachment; filename="..."[; filename*=...]` value.
    reply = disposition(server, "?as=" + quote(hostile, safe=""))
    assert reply.values("x-injected") == []
    value = reply.header("Content-Disposition")
    match = QUOTED_FILENAME_RE.fullmatch(value)
    assert match, value
    assert "/" not in match.group(1)


def test_non_ascii_download_name_gets_rfc5987(server):
    name = "résumé €.pdf"
    value = disposition(server, "?as=" + quote(name)).header("Content-Disposition")
    assert QUOTED_FILENAME_RE.fullmatch(value), value
    assert all(ord(char) < 0x80 for char in value)
    assert value.lower().endswith("; filename*=utf-8''" + quote(name, safe="").lower())
