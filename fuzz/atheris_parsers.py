"""Coverage-guided fuzzing of pixie_web's parsers with atheris (opt-in; not part of the suite).

    pip install atheris
    python fuzz/atheris_parsers.py TARGET [libFuzzer options, e.g. -runs=200000 -max_len=4096]

TARGET is one of:

  head       the pure and the httptools header paths must agree (accept/reject, result, error)
  protocol   a byte stream split into packets: HTTPProtocol answers the same, never a 500
  multipart  MultipartParser: only HTTPError 400/413; any split gives the same result
  cookie     parse_cookie_header: never raises, only token names
  query      parse_query_string: only HTTPError 400
  template   SimpleTemplate: only TemplateError

A crash prints the input and writes it to ./crash-*; replay it with
``python fuzz/atheris_parsers.py TARGET crash-<hash>``.  tests/test_differential.py and
tests/test_fuzz.py hold the same properties as hypothesis tests.
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pixie_web  # noqa: E402
from pixie_web import HTTPError, MultipartParser, ProtocolError, TemplateError  # noqa: E402


try:
    import httptools
except ImportError:
    httptools = None


def parse_head(head, parse_lines):
    try:
        result = pixie_web.parse_request_head(head, 8190, 100, parse_lines)
    except ProtocolError as error:
        return ("refused", error.status, error.message)
    return ("accepted", result.method, result.raw_target, result.http_version,
            list(result.header_pairs), result.content_length, result.chunked, result.keep_alive)


def fuzz_head(data):
    head = b"GET / HTTP/1.1\r\n" + data if data[:1] == b"\x00" else data
    pure = parse_head(head, pixie_web._parse_header_lines_pure)
    if httptools is not None:
        accelerated = parse_head(head, pixie_web._parse_header_lines_httptools)
        if pure != accelerated:
            raise AssertionError(f"paths disagree on {head!r}: {pure} != {accelerated}")


_app = pixie_web.App(max_body_size=4096)
_app.route("/", methods=("GET", "POST"))(lambda request: bytes(request.body))


def converse(pieces):
    import asyncio
    loop = asyncio.new_event_loop()
    try:
        server = pixie_web._Server(_app, loop)
        transport = pixie_web._MemoryTransport(loop)
        protocol = pixie_web.HTTPProtocol(server)
        transport._protocol = protocol
        protocol.connection_made(transport)
        for piece in pieces:
            if transport.is_closing():
                break
            protocol.data_received(piece)
            for _ in range(100):
                loop.run_until_complete(asyncio.sleep(0))
                if not protocol._busy:
                    break
        if not transport.is_closing() and not protocol.eof_received():
            transport.close()
        loop.run_until_complete(asyncio.wait_for(transport.closed, 5.0))
        return bytes(transport.output)
    finally:
        loop.close()


def statuses(output):
    import re
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", output)


def fuzz_protocol(data):
    provider = atheris.FuzzedDataProvider(data)
    cut = provider.ConsumeIntInRange(0, 4096)
    stream = provider.ConsumeBytes(4096)
    whole = converse([stream])
    split = converse([stream[:cut], stream[cut:]])
    if b" 500 " in whole:
        raise AssertionError(f"500 for {stream!r}")
    if [s for s in statuses(whole) if s != b"100"] != [s for s in statuses(split) if s != b"100"]:
        raise AssertionError(f"split at {cut} changes the answers to {stream!r}")


def fuzz_multipart(data):
    provider = atheris.FuzzedDataProvider(data)
    cut = provider.ConsumeIntInRange(0, 4096)
    body = b"--b\r\n" + provider.ConsumeBytes(4096)
    outcomes = []
    for pieces in ([body], [body[:cut], body[cut:]]):
        parser = MultipartParser(b"b")
        try:
            for piece in pieces:
                parser.feed(piece)
            fields, files = parser.finish()
            outcomes.append((fields.items(), [(n, f.raw_filename, f.read()) for n, f in files.items()]))
        except HTTPError as error:
            if error.status not in (400, 413):
                raise
            outcomes.append(error.status)
    if outcomes[0] != outcomes[1]:
        raise AssertionError(f"split at {cut} changes the result for {body!r}")


def fuzz_cookie(data):
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(4096)
    for name in pixie_web.parse_cookie_header(text):
        if not pixie_web._STR_TOKEN_RE.fullmatch(name):
            raise AssertionError(f"cookie name {name!r} from {text!r}")


def fuzz_query(data):
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(4096)
    try:
        pixie_web.parse_query_string(text, max_params=50)
    except HTTPError as error:
        if error.status != 400:
            raise


def fuzz_template(data):
    source = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(2048)
    for word in ("import", "exit", "quit", "while", "open", "__", "exec", "eval", "input"):
        if word in source:      # template source is trusted code: keep the fuzzer harmless
            return
    try:
        pixie_web.SimpleTemplate(source).render(x="<b>", y=[1, 2])
    except TemplateError:
        pass


TARGETS = {"head": fuzz_head, "protocol": fuzz_protocol, "multipart": fuzz_multipart,
           "cookie": fuzz_cookie, "query": fuzz_query, "template": fuzz_template}


SEEDS = {
    "head": [b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close",
             b"POST /x?y HTTP/1.0\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue",
             b"\x00Host: a\r\nCookie: a=1\r\nX:\t v \t"],
    "protocol": [b"\x00\x10POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5;a=\"b\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"],
    "multipart": [b"\x00\x20Content-Disposition: form-data; name=\"a\"; filename=\"b.txt\"\r\n"
                  b"Content-Type: text/plain\r\n\r\ndata\r\n--b\r\nContent-Disposition: form-data; "
                  b"name=\"c\"\r\n\r\nvalue\r\n--b--\r\n"],
    "cookie": [b'a=1; b="x\\"y"; c=\\101'],
    "query": [b"a=1&b=%20x+y&c"],
    "template": [b"% for i in y:\n{{i}} {{!x}}\n% end\n<% z = 1 %>{{z}}"],
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(__doc__)
    name, options = sys.argv[1], sys.argv[2:]
    if not any(not option.startswith("-") for option in options):   # no corpus given: seed one
        import tempfile
        corpus = tempfile.mkdtemp(prefix=f"pixie-fuzz-{name}-")
        for index, seed in enumerate(SEEDS[name]):
            with open(os.path.join(corpus, f"seed{index}"), "wb") as file:
                file.write(seed)
        options.append(corpus)
    atheris.enabled_hooks.add("RegEx")       # comparison feedback from re matches
    atheris.enabled_hooks.add("str")
    atheris.Setup([sys.argv[0]] + options, TARGETS[name])
    atheris.instrument_all()
    atheris.Fuzz()


if __name__ == "__main__":
    main()
