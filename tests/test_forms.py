"""Forms and uploads: urlencoded and multipart, their limits (classes E1-E11 and D5 of
SECURITY.md).

Three levels: the streaming ``MultipartParser`` unit-tested directly (feeding patterns, limits,
linear time), ``TestClient`` for the limits configured on an ``App`` (same parser and dispatcher
as the server), and real servers in both parser modes for multi-MB uploads into sync, thread and
pool routes (tests/apps/essentials_app.py).
"""
import hashlib
import math
import os
import random
import subprocess
import sys
import textwrap
import time

import pytest
import requests

from pixie_web import HTTPError, MultipartParser, TestClient
from tests.apps.essentials_app import make_form_app
from tests.support import ROOT, raw_exchange, status_of

TARGET = "tests.apps.essentials_app:app"
BOUNDARY = "----pixie-form-boundary-7MA4YWxk"


# ---- building bodies --------------------------------------------------------------------------

def field(name, value):
    """One non-file part (without delimiters)."""
    if isinstance(value, str):
        value = value.encode()
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value


def file_part(name, filename, data, content_type="application/octet-stream"):
    return (f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode() + data


def encode(parts, boundary=BOUNDARY, preamble=b"", epilogue=b""):
    """A multipart body: each part between delimiters, then the closing delimiter."""
    delimiter = b"--" + boundary.encode()
    body = [preamble, b"\r\n"] if preamble else []     # RFC 2046: preamble CRLF delimiter
    for part in parts:
        body += [delimiter, b"\r\n", part, b"\r\n"]
    body += [delimiter, b"--\r\n", epilogue]
    return b"".join(body)


def content_type(boundary=BOUNDARY):
    return f"multipart/form-data; boundary={boundary}"


def parse(body, boundary=BOUNDARY, pieces=None):
    """Feed ``body`` to a fresh parser (in the given piece sizes, else at once) and finish."""
    parser = MultipartParser(boundary.encode())
    if pieces is None:
        parser.feed(body)
    else:
        offset = 0
        for size in pieces:
            parser.feed(body[offset:offset + size])
            offset += size
        assert offset >= len(body)
    return parser.finish()


def summary(result):
    """Everything observable about a parse result, comparable with ``==``."""
    fields, files = result
    return (list(fields.items()),
            [(name, upload.raw_filename, upload.filename, upload.content_type, upload.size,
              upload.read()) for name, upload in files.items()])


def status_of_error(call):
    """The HTTPError status ``call()`` raises (fails the test if it raises nothing)."""
    with pytest.raises(HTTPError) as raised:
        call()
    return raised.value.status


# Data that looks like pieces of a delimiter without being one.
TRICKY_DATA = (b"\r\n--" + BOUNDARY[:10].encode() + b"\r\r\n-\n--" + BOUNDARY.encode()
               + b"x" + bytes(range(256)) + b"\r\n-" + b"\r" * 50)

SAMPLE_BODY = encode([
    field("title", "Hello, wörld"),
    field("tag", "a"),
    field("tag", "b"),
    file_part("upload", "notes.txt", b"line one\r\nline two\r\n", "text/plain"),
    file_part("blob", "tricky.bin", TRICKY_DATA),
    field("empty", b""),
    file_part("nothing", "zero.bin", b""),
])


# ---- the parser, unit-tested ------------------------------------------------------------------

def test_parser_returns_fields_and_files():
    fields, files = parse(SAMPLE_BODY)
    assert fields["title"] == "Hello, wörld"
    assert fields.getall("tag") == ["a", "b"]
    assert fields["empty"] == ""
    upload = files["upload"]
    assert (upload.name, upload.filename, upload.raw_filename) == (
        "upload", "notes.txt", "notes.txt")
    assert upload.content_type == "text/plain"
    assert upload.headers["Content-Type"] == "text/plain"
    assert upload.read() == b"line one\r\nline two\r\n"
    assert upload.size == len(b"line one\r\nline two\r\n")
    assert upload.file.tell() == 0
    assert "upload" not in fields and "title" not in files


def test_file_data_that_resembles_the_delimiter_is_kept_byte_for_byte():
    _, files = parse(SAMPLE_BODY)
    assert files["blob"].read() == TRICKY_DATA
    assert files["nothing"].read() == b"" and files["nothing"].size == 0


def test_feeding_one_byte_at_a_time_gives_the_same_result():
    expected = summary(parse(SAMPLE_BODY))
    assert summary(parse(SAMPLE_BODY, pieces=[1] * len(SAMPLE_BODY))) == expected


@pytest.mark.parametrize("seed", range(8))
def test_feeding_random_sized_pieces_gives_the_same_result(seed):
    rng = random.Random(seed)
    pieces, total = [], 0
    while total < len(SAMPLE_BODY):
        pieces.append(rng.randint(1, 97))
        total += pieces[-1]
    assert summary(parse(SAMPLE_BODY, pieces=pieces)) == summary(parse(SAMPLE_BODY))


def test_filename_star_is_decoded_as_rfc5987():
    part = (b"Content-Disposition: form-data; name=\"doc\"; filename*=UTF-8''%E2%82%AC%20rates.txt"
            b"\r\n\r\nbody")
    _, files = parse(encode([part]))
    assert files["doc"].raw_filename == "€ rates.txt"
    assert files["doc"].read() == b"body"
    assert "/" not in files["doc"].filename and files["doc"].filename


def test_a_small_crlf_preamble_and_any_epilogue_are_ignored():
    body = encode([field("a", "1")], preamble=b"\r\n" * 1000 + b"This is a preamble.\r\n",
                  epilogue=b"\r\n" * 1000 + b"trailing words")
    fields, _ = parse(body)
    assert list(fields.items()) == [("a", "1")]


def test_file_parts_above_the_spool_threshold_keep_their_content():
    data = os.urandom(600 * 1024)   # above the 512 KiB spool threshold
    _, files = parse(encode([file_part("big", "big.bin", data)]), pieces=[65536] * 11)
    assert files["big"].size == len(data)
    assert files["big"].read() == data


# ---- limits (SECURITY.md, classes E) ----------------------------------------------------------

def test_a_hundred_thousand_tiny_parts_are_refused_with_413():
    # E1 (werkzeug CVE-2023-25577): the part count is capped (max_form_parts=1000).
    body = encode([field("a", "x")] * 100_000)
    start = time.monotonic()
    assert status_of_error(lambda: parse(body)) == 413
    assert time.monotonic() - start < 30


def test_a_non_file_field_over_the_limit_is_refused_while_streaming():
    # E2 (Starlette CVE-2024-47874): the 1 MiB cap on a non-file field is enforced while the
    # data arrives, not after buffering the whole field.
    parser = MultipartParser(BOUNDARY.encode())
    parser.feed(b"--" + BOUNDARY.encode() + b"\r\n" + field("comment", b""))
    fed = 0
    with pytest.raises(HTTPError) as raised:
        while fed < 8 * 1024 * 1024:
            parser.feed(b"x" * 65536)
            fed += 65536
    assert raised.value.status == 413
    assert fed <= 2 * 1024 * 1024


def test_a_file_part_may_exceed_the_field_limit():
    data = b"y" * (1024 * 1024 + 10)
    _, files = parse(encode([file_part("f", "f.bin", data)]))
    assert files["f"].size == len(data)


def test_ten_thousand_headers_in_one_part_are_refused_with_400():
    # E7 (aiohttp CVE-2026-34516): part header size cap.
    part = b"".join(b"X-H%d: v\r\n" % i for i in range(10_000)) + field("a", "1")
    assert status_of_error(lambda: parse(encode([part]))) == 400


def test_a_thousand_tiny_headers_in_one_part_are_refused_with_400():
    # E7: a part header *count* cap too, not only a byte cap (these fit in 8 KiB).
    part = b"A:1\r\n" * 1000 + field("a", "1")
    assert len(part) < 8192
    assert status_of_error(lambda: parse(encode([part]))) == 400


# ---- linear time (E3, E4) ---------------------------------------------------------------------

def seconds_to_parse(body, budget, piece=16 * 1024):
    """Parse ``body`` fed in network-sized pieces; ``inf`` as soon as ``budget`` is exceeded
    (so a quadratic parser fails fast instead of hanging the suite)."""
    parser = MultipartParser(BOUNDARY.encode())
    start = time.thread_time()
    for offset in range(0, len(body), piece):
        parser.feed(body[offset:offset + piece])
        if time.thread_time() - start > budget:
            return math.inf
    parser.finish()
    return time.thread_time() - start


def assert_parse_time_linear(make_body, n, factor=10, max_ratio=40):
    """Parsing ``make_body(factor * n)`` takes at most ``max_ratio`` times ``make_body(n)``."""
    small_body = make_body(n)
    small = max(min(seconds_to_parse(small_body, budget=30) for _ in range(3)), 0.002)
    large = seconds_to_parse(make_body(n * factor), budget=max_ratio * small)
    assert large <= max_ratio * small, (
        f"{factor}x the input took {large / small:.1f}x the time (linear would be ~{factor}x)")


FILE_DATA_SHAPES = {
    "cr_then_no_newlines": lambda n: b"\r" + b"a" * n,
    "lf_then_no_newlines": lambda n: b"\n" + b"a" * n,
    "crlf_heavy": lambda n: b"\r\n" * (n // 2),
    "cr_heavy": lambda n: b"\r" * n,
    "delimiter_prefixes": lambda n: b"\r\n--" * (n // 4),
}


@pytest.mark.parametrize("shape", sorted(FILE_DATA_SHAPES))
def test_file_part_parsing_is_linear_in_its_size(shape):
    # E3 (werkzeug CVE-2023-46136): no re-scanning of a growing buffer.
    make_data = FILE_DATA_SHAPES[shape]

    def make_body(n):
        return encode([file_part("f", "f.bin", make_data(n))])

    _, files = parse(make_body(1000))
    assert files["f"].read() == make_data(1000)
    assert_parse_time_linear(make_body, 512 * 1024)


def test_a_crlf_flood_in_the_preamble_is_refused_with_400():
    # E4 (python-multipart CVE-2024-53981): the preamble is bounded (64 KiB).
    body = encode([field("a", "1")], preamble=b"\r\n" * (1024 * 1024))
    assert status_of_error(lambda: parse(body, pieces=[65536] * 40)) == 400


def test_a_crlf_flood_in_the_epilogue_is_parsed_in_linear_time():
    # E4: anything after the closing delimiter is skipped, linearly.
    def make_body(n):
        return encode([field("a", "1")], epilogue=b"\r\n" * (n // 2))

    fields, _ = parse(make_body(1000))
    assert fields["a"] == "1"
    assert_parse_time_linear(make_body, 512 * 1024)


# ---- TestClient: limits and broken input through the dispatcher -------------------------------

def post_multipart(client, body, ctype=None):
    return client.post("/upload", data=body, headers={"Content-Type": ctype or content_type()})


def test_part_count_limit_is_a_setting_of_the_app():
    with TestClient(make_form_app(max_form_parts=10)) as client:
        ok = post_multipart(client, encode([field("a", str(i)) for i in range(10)]))
        assert ok.status == 200
        assert [value for _, value in ok.json()["form"]] == [str(i) for i in range(10)]
        too_many = post_multipart(client, encode([field("a", str(i)) for i in range(11)]))
        assert too_many.status == 413
        assert too_many.text.startswith("413 ")


def test_field_size_limit_is_a_setting_of_the_app():
    # E2 through the dispatcher.
    with TestClient(make_form_app(max_form_field_size=1000)) as client:
        assert post_multipart(client, encode([field("a", b"v" * 1000)])).status == 200
        assert post_multipart(client, encode([field("a", b"v" * 1001)])).status == 413
        # the limit is for non-file fields only
        with_file = post_multipart(client, encode([file_part("f", "f.bin", b"v" * 5000)]))
        assert with_file.status == 200
        assert with_file.json()["files"][0]["size"] == 5000


def test_part_header_size_limit_is_a_setting_of_the_app():
    with TestClient(make_form_app(max_part_header_bytes=1024)) as client:
        small = b"X-Pad: " + b"p" * 700 + b"\r\n" + field("a", "1")
        large = b"X-Pad: " + b"p" * 1300 + b"\r\n" + field("a", "1")
        assert post_multipart(client, encode([small])).status == 200
        assert post_multipart(client, encode([large])).status == 400


def test_a_hundred_thousand_tiny_parts_through_the_dispatcher_get_413():
    # E1 through TestClient (same parser and dispatcher as the server).
    with TestClient(make_form_app()) as client:
        response = post_multipart(client, encode([field("a", "x")] * 100_000))
        assert response.status == 413


def test_quoted_boundary_is_accepted():
    # E8's legal input: a quoted boundary with a space and a colon.
    boundary = "quoted boundary:42"
    with TestClient(make_form_app()) as client:
        response = post_multipart(client, encode([field("a", "1")], boundary=boundary),
                                  f'multipart/form-data; boundary="{boundary}"')
        assert response.status == 200
        assert response.json()["form"] == [["a", "1"]]


def test_filename_star_through_the_dispatcher():
    part = (b"Content-Disposition: form-data; name=\"doc\"; filename*=UTF-8''na%C3%AFve.txt"
            b"\r\nContent-Type: text/plain\r\n\r\nabc")
    with TestClient(make_form_app()) as client:
        response = post_multipart(client, encode([part]))
        assert response.status == 200
        [upload] = response.json()["files"]
        assert upload["raw_filename"] == "naïve.txt"
        assert upload["sha256"] == hashlib.sha256(b"abc").hexdigest()


def broken_cases():
    """(id, Content-Type, body): each must get 400 (E8 and the contract's list)."""
    good = [field("a", "1")]
    delimiter = b"--" + BOUNDARY.encode()
    long_boundary = "b" * 71
    return [
        ("no_boundary_parameter", "multipart/form-data", encode(good)),
        ("empty_boundary", "multipart/form-data; boundary=", encode(good)),
        ("boundary_over_70_chars", content_type(long_boundary), encode(good, long_boundary)),
        ("boundary_with_invalid_character", content_type("ab@cd"), encode(good, "ab@cd")),
        ("empty_body", content_type(), b""),
        ("no_delimiter_at_all", content_type(), b"just some text"),
        ("no_closing_delimiter", content_type(), delimiter + b"\r\n" + good[0] + b"\r\n"),
        ("truncated_in_part_headers", content_type(),
         delimiter + b"\r\nContent-Disposition: form-data; name=\"a\"\r\n"),
        ("junk_after_boundary", content_type(),
         delimiter + b"junk\r\n" + good[0] + b"\r\n" + delimiter + b"--\r\n"),
        ("no_crlf_between_content_and_closing_delimiter", content_type(),
         delimiter + b"\r\n" + good[0] + delimiter + b"--\r\n"),
        ("part_without_content_disposition", content_type(),
         encode([b"Content-Type: text/plain\r\n\r\nvalue"])),
        ("content_disposition_not_form_data", content_type(),
         encode([b'Content-Disposition: attachment; name="a"\r\n\r\nvalue'])),
        ("content_disposition_without_name", content_type(),
         encode([b"Content-Disposition: form-data\r\n\r\nvalue"])),
        ("boundary_differs_only_by_case", content_type("CaseBoundary"),
         encode(good, "caseboundary")),
        ("part_content_length_plus_5", content_type(),
         encode([b'Content-Disposition: form-data; name="a"\r\nContent-Length: +5\r\n\r\nhello'])),
        ("part_header_line_without_colon", content_type(),
         encode([b'Content-Disposition: form-data; name="a"\r\nno colon here\r\n\r\nv'])),
        ("preamble_over_64_KiB", content_type(), encode(good, preamble=b"p" * (65 * 1024))),
    ]


@pytest.mark.parametrize("ctype, body", [case[1:] for case in broken_cases()],
                         ids=[case[0] for case in broken_cases()])
def test_broken_multipart_is_refused_with_400(ctype, body):
    # E8 (bottle TestBrokenMultipart, aiohttp PR #12794) and E6 (terminates with 400).
    with TestClient(make_form_app()) as client:
        response = post_multipart(client, body, ctype)
        assert response.status == 400, response.text
        assert response.text.startswith("400 Bad Request")


def test_broken_multipart_handling_is_the_same_under_python_dash_O():
    # E6 (aiohttp CVE-2025-69227): no `assert` for control flow, so -O changes nothing.
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from pixie_web import HTTPError, MultipartParser
        from tests.test_forms import BOUNDARY, broken_cases
        for name, ctype, body in broken_cases():
            if "boundary=" + BOUNDARY not in ctype:
                continue      # boundary-parameter cases are checked by the request, not here
            parser = MultipartParser(BOUNDARY.encode())
            try:
                parser.feed(body)
                parser.finish()
                print(name, "accepted")
            except HTTPError as error:
                print(name, error.status)
    """)

    def outcomes(*flags):
        result = subprocess.run([sys.executable, *flags, "-c", script, ROOT], capture_output=True,
                                text=True, timeout=60, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        return dict(line.split(" ", 1) for line in result.stdout.split("\n") if line)

    normal, optimised = outcomes(), outcomes("-O")
    assert len(normal) >= 10
    assert optimised == normal


def test_content_disposition_with_many_parameters_is_parsed_in_linear_time():
    # E5 (tornado CVE-2025-67726, python-multipart CVE-2024-24762): 10k vs 100k `;a` params,
    # and a quoted name full of `;`.
    def timed_post(client, n):
        part = (b'Content-Disposition: form-data; name="' + b"a;" * n + b'a"'
                + b"; a=1" * n + b"\r\n\r\nvalue")
        start = time.thread_time()
        response = post_multipart(client, encode([part]))
        return time.thread_time() - start, response

    with TestClient(make_form_app(max_part_header_bytes=8 * 1024 * 1024,
                                  max_header_bytes=1024 * 1024)) as client:
        small = max(min(timed_post(client, 10_000)[0] for _ in range(3)), 0.002)
        large, response = timed_post(client, 100_000)
        assert response.status == 200
        assert response.json()["form"] == [["a;" * 100_000 + "a", "value"]]
        assert large <= 40 * small, f"10x the parameters took {large / small:.1f}x the time"


def test_content_type_parameter_full_of_backslashes_is_parsed_in_linear_time():
    # E5 (python-multipart CVE-2024-24762): `boundary=x; a="\\\\…"` in the request header.
    def timed_post(client, n):
        ctype = content_type() + '; a="' + "\\\\" * n + '"'
        start = time.thread_time()
        response = post_multipart(client, encode([field("a", "1")]), ctype)
        return time.thread_time() - start, response

    with TestClient(make_form_app(max_header_bytes=4 * 1024 * 1024)) as client:
        small = max(min(timed_post(client, 20_000)[0] for _ in range(3)), 0.002)
        large, response = timed_post(client, 200_000)
        assert response.status == 200
        assert response.json()["form"] == [["a", "1"]]
        assert large <= 40 * small, f"10x the backslashes took {large / small:.1f}x the time"


# ---- FileUpload.save (D5) ---------------------------------------------------------------------

def one_upload(filename, data=b"uploaded bytes"):
    _, files = parse(encode([file_part("f", filename, data)]))
    return files["f"]


def test_save_to_a_path_writes_the_content(tmp_path):
    upload = one_upload("report.txt", b"report content")
    target = tmp_path / "saved.txt"
    upload.save(target)
    assert target.read_bytes() == b"report content"


def test_save_to_a_directory_uses_the_sanitised_filename(tmp_path):
    upload = one_upload("report.txt", b"report content")
    upload.save(tmp_path)
    assert (tmp_path / upload.filename).read_bytes() == b"report content"
    assert upload.filename == "report.txt"


def test_save_refuses_to_overwrite_unless_asked(tmp_path):
    # an existing file is never overwritten unless overwrite=True: FileExistsError
    target = tmp_path / "existing.txt"
    target.write_bytes(b"old")
    upload = one_upload("new.txt", b"new")
    with pytest.raises(FileExistsError):
        upload.save(target)
    assert target.read_bytes() == b"old"
    upload.save(target, overwrite=True)
    assert target.read_bytes() == b"new"


def test_save_into_a_directory_twice_raises_file_exists(tmp_path):
    upload = one_upload("twice.txt", b"first")
    upload.save(tmp_path)
    with pytest.raises(FileExistsError):
        upload.save(tmp_path)
    assert (tmp_path / "twice.txt").read_bytes() == b"first"


HOSTILE_FILENAMES = ["../../x", "/etc/passwd", "C:\\x", "", "ünïcødé 文件.txt", "..", ".",
                     "\\\\host\\share\\x", "a/../../b", "sub/dir/name.txt"]


@pytest.mark.parametrize("raw_filename", HOSTILE_FILENAMES)
def test_uploaded_filenames_are_sanitised_and_saved_inside_the_directory(tmp_path, raw_filename):
    # D5 (python-multipart CVE-2026-24486): save() must never leave the target directory.
    upload_dir = tmp_path / "uploads"
    upload_dir.mkdir()
    upload = one_upload(raw_filename)
    name = upload.filename
    assert name and name not in (".", "..")
    assert not any(char in name for char in "/\\:\x00")
    upload.save(upload_dir)
    saved = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(saved) == 1
    assert saved[0].parent == upload_dir
    assert saved[0].read_bytes() == b"uploaded bytes"


@pytest.mark.parametrize("raw_filename", HOSTILE_FILENAMES)
def test_raw_filename_is_kept_as_the_browser_sent_it(raw_filename):
    # Browsers send file names as raw UTF-8 and do not backslash-escape them (WHATWG
    # multipart/form-data encoding: only `"`, CR and LF are percent-encoded), so Windows paths
    # and non-ASCII names must come back unchanged in raw_filename.
    assert one_upload(raw_filename).raw_filename == raw_filename


@pytest.mark.parametrize("raw_filename, expected", [("../../x", "x"), ("/etc/passwd", "passwd"),
                                                    ("sub/dir/name.txt", "name.txt")])
def test_sanitised_filename_is_the_base_name(raw_filename, expected):
    assert one_upload(raw_filename).filename == expected


# ---- real servers: multi-MB uploads in both parser modes --------------------------------------

@pytest.fixture(scope="module")
def servers(shared_server):
    """Real servers (with a 2-worker pool), started on first use per parser mode."""
    return lambda mode: shared_server(TARGET, mode, workers=2)


@pytest.fixture(scope="module", params=["pure", "accelerated"])
def server(request, servers):
    return servers(request.param)


BIG_UPLOAD = random.Random(1234).randbytes(5 * 1024 * 1024 + 17)
SMALL_UPLOAD = b"\r\n--" + BOUNDARY.encode() + b"\r\n" + bytes(range(256)) * 64


@pytest.mark.parametrize("route_type", ["sync", "thread", "pool"])
def test_multi_megabyte_uploads_round_trip(server, route_type):
    response = requests.post(
        f"{server.url}/upload/{route_type}", timeout=60,
        data={"note": "héllo", "count": "2"},
        files=[("upload", ("big.bin", BIG_UPLOAD, "application/octet-stream")),
               ("upload", ("small.dat", SMALL_UPLOAD, "application/x-test"))])
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["form"] == [["note", "héllo"], ["count", "2"]]
    assert [(f["field"], f["filename"], f["content_type"], f["size"], f["sha256"])
            for f in result["files"]] == [
        ("upload", "big.bin", "application/octet-stream", len(BIG_UPLOAD),
         hashlib.sha256(BIG_UPLOAD).hexdigest()),
        ("upload", "small.dat", "application/x-test", len(SMALL_UPLOAD),
         hashlib.sha256(SMALL_UPLOAD).hexdigest()),
    ]
    assert result["proc_type"] == ("pool" if route_type == "pool" else "main")


def test_chunked_multipart_upload_round_trips(server):
    body = encode([field("note", "chunked"), file_part("f", "c.bin", BIG_UPLOAD[:2_000_000])])

    def pieces():
        for offset in range(0, len(body), 100_003):
            yield body[offset:offset + 100_003]

    response = requests.post(f"{server.url}/upload/sync", data=pieces(), timeout=60,
                             headers={"Content-Type": content_type()})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["form"] == [["note", "chunked"]]
    assert result["files"][0]["sha256"] == hashlib.sha256(BIG_UPLOAD[:2_000_000]).hexdigest()


def test_urlencoded_form_is_parsed(server):
    response = requests.post(f"{server.url}/upload/thread", timeout=30,
                             data=[("a", "1"), ("b", "é & ="), ("a", "2")])
    assert response.status_code == 200
    result = response.json()
    # items() order across different names is not specified; per name it is arrival order
    assert sorted(result["form"], key=lambda pair: pair[0]) == [["a", "1"], ["a", "2"],
                                                                ["b", "é & ="]]
    assert result["files"] == [] and result["proc_type"] == "main"


def test_broken_multipart_over_the_wire_gets_400_and_the_server_keeps_serving(server):
    body = encode([field("a", "1")], boundary="caseboundary")
    response = requests.post(f"{server.url}/upload/pool", data=body, timeout=30,
                             headers={"Content-Type": content_type("CaseBoundary")})
    assert response.status_code == 400
    after = requests.post(f"{server.url}/upload/pool", data={"a": "1"}, timeout=30)
    assert after.status_code == 200


def test_negative_content_length_is_refused_with_400(server):
    # E9 (python-multipart advisory): a negative Content-Length must not mean "read until EOF".
    body = encode([field("a", "1")])
    request = (b"POST /upload/sync HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n"
               b"Content-Type: " + content_type().encode() + b"\r\n\r\n" + body)
    reply = raw_exchange(server.port, request)
    assert status_of(reply) == 400
    assert reply.count(b"HTTP/1.1 ") == 1
    assert server.alive()
