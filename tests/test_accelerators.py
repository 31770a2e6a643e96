"""The accelerator switch, and JSON that is byte-identical with and without ujson."""
import json

import pytest

from tests.support import run_script

# Values where JSON libraries commonly disagree with the standard library.
CORPUS_PY = r"""[
    float("nan"), float("inf"), -float("inf"), 2 ** 70, -(2 ** 80), {1: "a", 2: [None]},
    "é\u2028</script>\\/", 1.0, 1e100, 1e-7, -0.0, 0.1 + 0.2, (1, 2), {"a": None},
    "\ud800", [[[[]]]], {"nested": {"list": [1, 2.5, "x", True, False]}}, "",
    __import__("decimal").Decimal("10.50"),
]"""
LOADS_CORPUS = [b'{"a":1e400}', b"[NaN]", b'"\\ud800"', b'{"a":1,"a":2}',
                b"12345678901234567890123", b"[1.5e-10, -0]", b'{"k": "\\u00e9"}',
                b"[" * 600 + b"]" * 600, b"[,]", b"{'a': 1}", b""]

SCRIPT = r"""
import json, sys
import pixie_web
corpus = %s
dumped = []
for value in corpus:
    try:
        dumped.append(pixie_web.json_dumps(value).decode("utf-8", "surrogatepass"))
    except Exception as error:
        dumped.append("error:" + type(error).__name__)
loaded = []
for raw in %r:
    request = pixie_web.Request("POST", "/", "/", "", "1.1",
                                [("content-type", "application/json")], raw)
    try:
        loaded.append(repr(request.json))
    except pixie_web.HTTPError as error:
        loaded.append("http:%%d" %% error.status)
print(json.dumps({"accelerators": pixie_web.ACCELERATORS, "dumped": dumped, "loaded": loaded}))
""" % (CORPUS_PY, LOADS_CORPUS)


def run_probe(pure, block_ujson=False):
    prefix = "import sys; sys.modules['ujson'] = None\n" if block_ujson else ""
    return json.loads(run_script(prefix + SCRIPT, pure).stdout)


def test_pure_switch_turns_every_accelerator_off():
    assert run_probe(pure=True)["accelerators"] == []


def test_a_missing_accelerator_falls_back_silently():
    assert "ujson" not in run_probe(pure=False, block_ujson=True)["accelerators"]


def test_json_output_and_parsing_are_identical_with_and_without_ujson():
    pytest.importorskip("ujson", reason="ujson not installed: accelerated JSON not testable")
    accelerated = run_probe(pure=False)
    pure = run_probe(pure=True)
    assert "ujson" in accelerated["accelerators"]
    # The same output byte for byte (JSON is always written by the standard library: ujson
    # would write 1e-7 for 1e-07, and a Decimal as a float), and the same values read.
    assert accelerated["dumped"] == pure["dumped"]
    assert accelerated["loaded"] == pure["loaded"]
    # and the pure results are the standard library's own
    assert pure["dumped"][0] == "NaN" and pure["loaded"][-4] == "http:400"


# ---- the event loop: imported when first needed, uvloop when in use --------------------------

LOOP_SCRIPT = r"""
import json, sys
import pixie_web
imported_early = "asyncio" in sys.modules
app = pixie_web.App()

@app.route("/loop")
async def loop_kind(request):
    import asyncio
    return type(asyncio.get_running_loop()).__module__

with pixie_web.TestClient(app) as client:
    loop_module = client.get("/loop").text
print(json.dumps({"asyncio_at_import": imported_early, "loop": loop_module,
                  "accelerators": pixie_web.ACCELERATORS}))
"""


def run_loop_probe(pure, extra_path=None):
    result = run_script(LOOP_SCRIPT, pure, extra_path)
    return json.loads(result.stdout), result.stderr


@pytest.mark.parametrize("pure", [True, False], ids=["pure", "accelerated"])
def test_import_does_not_load_asyncio_and_the_loop_matches_the_accelerators(pure):
    probe, _ = run_loop_probe(pure)
    assert probe["asyncio_at_import"] is False
    if "uvloop" in probe["accelerators"]:
        assert probe["loop"] == "uvloop"
    else:
        assert probe["loop"].startswith("asyncio")
    if pure:
        assert probe["loop"].startswith("asyncio")


def test_a_uvloop_that_cannot_be_imported_falls_back_to_asyncio(tmp_path):
    broken = tmp_path / "uvloop"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('built for another Python')\n")
    probe, stderr = run_loop_probe(pure=False, extra_path=str(tmp_path))
    assert probe["loop"].startswith("asyncio")
    assert "uvloop" not in probe["accelerators"]
    assert "uvloop cannot be imported" in stderr and "built for another Python" in stderr
