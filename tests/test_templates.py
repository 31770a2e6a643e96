"""Templates (SECURITY.md classes D13, H4): the SimpleTemplate-style engine.

Unit tests through ``template()``; ``@view`` through ``TestClient``.  Named templates come from
tests/fixtures/views (read-only) or from tmp dirs (for lookup order, traversal and recompiling).
``TEMPLATE_PATH`` is changed in place and restored after each test.
"""
import html
import os
import re
import time
import traceback

import pytest

import pixie_web
from pixie_web import App, Response, TemplateError, TestClient, template, view

FIXTURE_VIEWS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "views")


@pytest.fixture(autouse=True)
def template_path():
    """TEMPLATE_PATH = [tests/fixtures/views] during the test (tests may change it)."""
    saved = list(pixie_web.TEMPLATE_PATH)
    pixie_web.TEMPLATE_PATH[:] = [FIXTURE_VIEWS]
    yield pixie_web.TEMPLATE_PATH
    pixie_web.TEMPLATE_PATH[:] = saved


def write(directory, name, text, mtime=None):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


# ---- source or name ---------------------------------------------------------------------------

def test_source_with_inline_expression_is_rendered():
    assert template("Hello {{name}}!", name="World") == "Hello World!"


def test_source_with_a_newline_is_rendered():
    assert template("line one\nline two: {{2 * 21}}\n") == "line one\nline two: 42\n"


def test_source_with_a_percent_line_is_rendered():
    assert template("% if True:\nyes\n% end") .strip() == "yes"


def test_plain_string_is_a_template_name():
    assert template("essentials_greeting", name="Ann").strip() == "<p>Hello, Ann!</p>"


def test_missing_template_name_raises_template_error():
    with pytest.raises(TemplateError) as raised:
        template("no_such_template_anywhere")
    assert "no_such_template_anywhere" in str(raised.value)


# ---- inline expressions -----------------------------------------------------------------------

def test_expressions_are_html_escaped():
    # H4: autoescape on by default.
    hostile = """<script>alert('x')</script> & "quoted" """
    output = template("<p>{{value}}</p>", value=hostile)
    inner = output[len("<p>"):-len("</p>")]
    assert html.unescape(inner) == hostile
    assert not any(char in inner for char in "<>\"'")


@pytest.mark.parametrize("value", [
    "&amp; already escaped", "'single' \"double\"", "<a href='x'>&lt;</a>", "caf\u00e9 \u2603 &",
    "&&<<>>''\"\"", "", "plain text", b"<bytes & 'quotes'>", 42, 3.5])
def test_escaping_is_exactly_html_escape_with_quotes(value):
    # pixie_web escapes without importing html; the output must stay byte-for-byte the same
    text = value.decode() if isinstance(value, bytes) else str(value)
    assert template("{{value}}", value=value) == html.escape(text, quote=True)


def test_raw_expressions_are_not_escaped():
    assert template("{{!value}}", value="<b>bold</b> & co") == "<b>bold</b> & co"


@pytest.mark.parametrize("value, expected", [(None, ""), (0, "0"), (False, "False"), (1.5, "1.5"),
                                             ("", ""), ([1, 2], "[1, 2]")])
def test_expression_values_are_converted_to_text(value, expected):
    assert template("[{{value}}]", value=value) == f"[{expected}]"
    assert template("[{{!value}}]", value=value) == f"[{expected}]"


def test_expressions_may_contain_python():
    source = ("{{ items[0].upper() }}-{{ len(items) }}-{{ {'a': 1}['a'] }}-"
              "{{ 'x' if flag else 'y' }}")
    assert template(source, items=["ab", "c"], flag=False) == "AB-2-1-y"


def test_text_is_kept_verbatim():
    source = "100% sure\n  indented text\n\ttab\n50 %> 40 and a {single} brace\n"
    assert template(source) == source


def test_unicode_text_and_values():
    assert template("Grüße, {{name}} ✓\n", name="Zoë") == "Grüße, Zoë ✓\n"


# ---- statements -------------------------------------------------------------------------------

def test_for_loop():
    source = "<ul>\n% for item in items:\n<li>{{item}}</li>\n% end\n</ul>\n"
    assert template(source, items=["a", "<b>"]) == "<ul>\n<li>a</li>\n<li>&lt;b&gt;</li>\n</ul>\n"


@pytest.mark.parametrize("n, expected", [(1, "one"), (2, "two"), (3, "many")])
def test_if_elif_else(n, expected):
    source = "% if n == 1:\none\n% elif n == 2:\ntwo\n% else:\nmany\n% end\n"
    assert template(source, n=n) == expected + "\n"


def test_nested_blocks():
    source = ("% for row in rows:\n"
              "% for cell in row:\n"
              "% if cell % 2:\n"
              "odd {{cell}}\n"
              "% else:\n"
              "even {{cell}}\n"
              "% end\n"
              "% end\n"
              "--\n"
              "% end\n")
    assert template(source, rows=[[1, 2], [3]]) == "odd 1\neven 2\n--\nodd 3\n--\n"


def test_percent_lines_may_be_indented():
    # bottle's SimpleTemplate accepts whitespace before the `%` of a code line.
    source = "<ul>\n  % for item in items:\n    <li>{{item}}</li>\n  % end\n</ul>\n"
    assert template(source, items=[1, 2]) == "<ul>\n    <li>1</li>\n    <li>2</li>\n</ul>\n"


def test_single_line_code_block():
    assert template("<% greeting = 'hi' %>{{greeting}}, {{name}}\n", name="Bo").strip() == "hi, Bo"


def test_multi_line_code_block_with_end():
    source = ("<%\n"
              "  total = 0\n"
              "  for number in numbers:\n"
              "      total += number\n"
              "  end\n"
              "%>\n"
              "total={{total}}\n")
    assert template(source, numbers=[1, 2, 3, 4]).strip() == "total=10"


def test_get_defined_and_setdefault():
    source = ("{{get('missing', 'fallback')}}|{{get('present', 'fallback')}}|"
              "{{defined('present')}}|{{defined('missing')}}\n"
              "% setdefault('colour', 'blue')\n"
              "% setdefault('present', 'ignored')\n"
              "{{colour}}|{{present}}\n")
    assert template(source, present="here") == "fallback|here|True|False\nblue|here\n"


def test_variables_do_not_leak_between_renders():
    source = "{{defined('secret')}}\n"
    assert template(source, secret="s").strip() == "True"
    assert template(source).strip() == "False"


def test_cached_template_is_rendered_with_new_variables():
    source = "value={{value}}\n"
    assert [template(source, value=v) for v in (1, 2, 3)] == ["value=1\n", "value=2\n", "value=3\n"]


# ---- include and rebase -----------------------------------------------------------------------

def test_include_and_rebase():
    output = template("essentials_page", title="T&C", heading="People", people=["Ann", "<Bob>"])
    assert output.startswith("<html><title>T&amp;C</title><body>\n")
    assert output.rstrip().endswith("</body></html>")
    assert "<h1>People</h1>" in output
    assert "<li>Ann</li>" in output and "<li>&lt;Bob&gt;</li>" in output
    assert output.index("<h1>") < output.index("<li>Ann</li>") < output.index("</body>")
    assert output.count("<html>") == 1


def test_include_passes_keyword_arguments(tmp_path, template_path):
    template_path[:] = [str(tmp_path)]
    write(tmp_path, "row.tpl", "[{{label}}={{value}}]\n")
    source = '% include("row", label="a", value=1)\n% include("row", label="b", value="<2>")\n'
    assert template(source) == "[a=1]\n[b=&lt;2&gt;]\n"


def test_rebase_layout_receives_its_keyword_arguments(tmp_path, template_path):
    template_path[:] = [str(tmp_path)]
    write(tmp_path, "frame.tpl", "<{{tag}}>{{!base}}</{{tag}}>\n")
    output = template('% rebase("frame", tag="main")\ncontent {{x}}\n', x="<x>")
    assert output.strip() == "<main>content &lt;x&gt;\n</main>"


# ---- @view ------------------------------------------------------------------------------------

def make_view_app():
    app = App()

    @app.get("/page")
    @view("essentials_greeting")
    def page(request):
        return {"name": request.query.get("name", "nobody")}

    @app.get("/text")
    @view("essentials_greeting")
    def text(request):
        return "not a dict"

    @app.get("/response")
    @view("essentials_greeting")
    def response(request):
        return Response("created", status=201)

    return app


def test_view_renders_a_returned_dict():
    with TestClient(make_view_app()) as client:
        reply = client.get("/page", params={"name": "<Eve>"})
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/html")
        assert reply.text.strip() == "<p>Hello, &lt;Eve&gt;!</p>"


def test_view_passes_other_return_values_through():
    with TestClient(make_view_app()) as client:
        assert client.get("/text").text == "not a dict"
        reply = client.get("/response")
        assert (reply.status, reply.text) == (201, "created")


# ---- lookup -----------------------------------------------------------------------------------

def test_lookup_order_is_name_then_tpl_then_html(tmp_path, template_path):
    template_path[:] = [str(tmp_path)]
    write(tmp_path, "exact", "exact\n")
    write(tmp_path, "exact.tpl", "tpl\n")
    write(tmp_path, "exact.html", "html\n")
    write(tmp_path, "second.tpl", "tpl\n")
    write(tmp_path, "second.html", "html\n")
    write(tmp_path, "third.html", "html\n")
    assert template("exact") == "exact\n"
    assert template("second") == "tpl\n"
    assert template("third") == "html\n"
    assert template("third.html") == "html\n"


def test_template_path_directories_are_searched_in_order(tmp_path, template_path):
    first, second = tmp_path / "first", tmp_path / "second"
    write(first, "both.tpl", "first\n")
    write(second, "both.tpl", "second\n")
    write(second, "only_second.tpl", "only second\n")
    template_path[:] = [str(first), str(second)]
    assert template("both") == "first\n"
    assert template("only_second") == "only second\n"


@pytest.fixture
def secret_outside(tmp_path, template_path):
    """views/ is the only template dir; a template-looking secret sits next to it."""
    views = tmp_path / "views"
    write(views, "ok.tpl", "ok\n")
    write(views / "sub", "inner.tpl", "inner\n")
    secret = write(tmp_path, "secret.tpl", "SECRET-TEMPLATE {{1}}\n")
    template_path[:] = [str(views)]
    return secret


@pytest.mark.parametrize("name", ["../secret", "../secret.tpl", "sub/../../secret",
                                  "../../../../../../etc/passwd", "/etc/passwd", "..",
                                  "ok\x00", "..\\secret"])
def test_names_leaving_the_template_dirs_are_refused(secret_outside, name):
    # D13 (bottle BaseTemplate.search).
    with pytest.raises(TemplateError) as raised:
        template(name)
    assert "SECRET-TEMPLATE" not in str(raised.value)


def test_absolute_path_to_an_existing_template_is_refused(secret_outside):
    # D13: an absolute name is refused even when the file exists.
    with pytest.raises(TemplateError):
        template(str(secret_outside))


def test_include_of_a_name_outside_the_dirs_is_refused(secret_outside):
    with pytest.raises(TemplateError):
        template('% include("../secret")\n')


def test_names_inside_the_dirs_still_work(secret_outside):
    assert template("ok") == "ok\n"
    assert template("sub/inner") == "inner\n"


# ---- recompiling ------------------------------------------------------------------------------

def test_changed_template_file_is_recompiled(tmp_path, template_path):
    template_path[:] = [str(tmp_path)]
    write(tmp_path, "live.tpl", "one {{x}}\n", mtime=1_600_000_000)
    assert template("live", x=1) == "one 1\n"
    assert template("live", x=2) == "one 2\n"
    write(tmp_path, "live.tpl", "two {{x}}\n", mtime=1_600_000_010)
    assert template("live", x=3) == "two 3\n"


def test_changed_included_template_is_recompiled(tmp_path, template_path):
    template_path[:] = [str(tmp_path)]
    write(tmp_path, "outer.tpl", '% include("inner")\n', mtime=1_600_000_000)
    write(tmp_path, "inner.tpl", "inner v1\n", mtime=1_600_000_000)
    assert template("outer") == "inner v1\n"
    write(tmp_path, "inner.tpl", "inner v2 (longer)\n", mtime=1_600_000_010)
    assert template("outer") == "inner v2 (longer)\n"


# ---- errors name the template and the line ----------------------------------------------------

def error_text(error):
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


@pytest.mark.parametrize("body, line", [
    ("line 1\nline 2\n{{ 1 + }}\n", 3),
    ("line 1\n% if x\nyes\n% end\n", 2),
    ("line 1\nline 2\nline 3\n% for x in :\n% end\n", 4),
])
def test_syntax_error_names_template_and_line(tmp_path, template_path, body, line):
    template_path[:] = [str(tmp_path)]
    write(tmp_path, "broken_syntax.tpl", body)
    with pytest.raises(TemplateError) as raised:
        template("broken_syntax", x=1)
    message = str(raised.value).replace(str(tmp_path), "")
    assert "broken_syntax" in message
    assert re.search(rf"(?<!\d){line}(?!\d)", message), message


def test_unclosed_block_is_a_template_error(tmp_path, template_path):
    template_path[:] = [str(tmp_path)]
    write(tmp_path, "unclosed.tpl", "a\n% if x:\nb\n")
    with pytest.raises(TemplateError) as raised:
        template("unclosed", x=True)
    assert "unclosed" in str(raised.value)


def test_end_without_a_block_is_a_template_error(tmp_path, template_path):
    template_path[:] = [str(tmp_path)]
    write(tmp_path, "extra_end.tpl", "a\n% end\n")
    with pytest.raises(TemplateError) as raised:
        template("extra_end")
    assert "extra_end" in str(raised.value)


def test_runtime_error_names_template_and_line(tmp_path, template_path):
    template_path[:] = [str(tmp_path)]
    write(tmp_path, "broken_runtime.tpl", "line 1\nline 2\nline 3\n{{ undefined_name_xyz }}\n")
    with pytest.raises(Exception) as raised:
        template("broken_runtime")
    text = error_text(raised.value)
    assert "undefined_name_xyz" in text
    assert "broken_runtime" in text
    assert any("broken_runtime" in line and "4" in line for line in text.splitlines())


# ---- compile time (DoS) -----------------------------------------------------------------------

def render_or_error(source):
    """(seconds, output or the TemplateError) for a source never seen before."""
    start = time.thread_time()
    try:
        outcome = template(source)
    except TemplateError as error:
        outcome = error
    return time.thread_time() - start, outcome


_unique = iter(range(10**9))


def nested_ifs(depth):
    marker = f"nest-{next(_unique)}"
    return ("% if True:\n" * depth) + marker + "\n" + ("% end\n" * depth), marker


def test_moderately_nested_blocks_render():
    source, marker = nested_ifs(40)
    assert template(source).strip() == marker


def test_deeply_nested_blocks_render_or_fail_cleanly_in_linear_time():
    # 1000 nested `% if`: rendered, or a TemplateError (Python itself caps indentation at 100
    # levels) - never a crash, and never a superlinear compile.
    def timed(depth):
        source, marker = nested_ifs(depth)
        seconds, outcome = render_or_error(source)
        assert isinstance(outcome, TemplateError) or outcome.strip() == marker
        return seconds

    small = max(min(timed(100) for _ in range(3)), 0.002)
    large = timed(1000)
    assert large <= 40 * small, f"10x the nesting took {large / small:.1f}x the time"


def long_source(lines):
    chunk = ("plain text line with {{value}} and {{!raw}}\n"
             "% if value:\n"
             "<p>{{value * 2}}</p>\n"
             "% end\n")
    return f"<!-- {next(_unique)} -->\n" + chunk * (lines // 4)


def test_long_source_compiles_in_linear_time():
    def timed(lines):
        start = time.thread_time()
        output = template(long_source(lines), value=3, raw="<r>")
        assert output.count("<p>6</p>") == lines // 4
        return time.thread_time() - start

    small = max(min(timed(2_000) for _ in range(3)), 0.002)
    large = timed(20_000)
    assert large <= 40 * small, f"10x the lines took {large / small:.1f}x the time"


# ---- template_lookup: directories per call, TEMPLATE_PATH untouched -------------------------

def test_template_lookup_replaces_template_path_for_the_call_and_its_includes(tmp_path, template_path):
    board, layouts = tmp_path / "board", tmp_path / "layouts"
    write(board, "page.tpl", '% rebase("frame", title="T")\n% include("part")\nbody {{x}}\n')
    write(board, "part.tpl", "part\n")
    write(layouts, "frame.tpl", "<{{title}}>{{!base}}</{{title}}>\n")
    write(tmp_path / "other", "page.tpl", "the wrong page\n")
    template_path[:] = [str(tmp_path / "other")]
    text = template("page", template_lookup=[str(board), str(layouts)], x=1)
    assert text == "<T>part\nbody 1\n</T>\n"
    assert template_path == [str(tmp_path / "other")]           # the global list is unchanged
    assert template("page") == "the wrong page\n"                # and still used without it
    with pytest.raises(TemplateError, match="not found"):
        template("frame")                                        # layouts/ only via the lookup


def test_view_takes_a_template_lookup(tmp_path):
    write(tmp_path, "hello.tpl", "hello {{name}}")
    app = App()

    @app.get("/")
    @view("hello", template_lookup=[str(tmp_path)])
    def hello(request):
        return {"name": "you"}
    with TestClient(app) as client:
        assert client.get("/").text == "hello you"


def test_a_template_variable_may_be_called_lookup(tmp_path):
    write(tmp_path, "t.tpl", "{{lookup}}")
    assert template("t", template_lookup=[str(tmp_path)], lookup="value") == "value"
