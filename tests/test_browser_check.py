"""Tests of tools/check_browser.py, the real-browser check of the rendered book.

The page analysis runs on small HTML snippets shaped like the book's pages after MathJax ran (no
browser, no build): each defect the check exists for is planted once, and a clean page must pass.
The tests marked ``browser`` open a tiny synthetic site in headless Chromium; they run in
tools/test.sh's browser stage (``pytest -m browser``), not with the unit tests.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import check_browser as cb  # noqa: E402  (tools/ is not a package)

#: typeset math as MathJax 3 leaves it: the TeX is gone, glyphs are drawn by CSS
MJX = ('<span class="math notranslate nohighlight"><mjx-container class="MathJax"'
       ' jax="CHTML"><mjx-math class="MJX-TEX"><mjx-mi class="mjx-i"><mjx-c class="mjx-c1D70E'
       ' TEX-I"></mjx-c></mjx-mi></mjx-math><mjx-assistive-mml unselectable="on" display="inline">'
       '<math xmlns="http://www.w3.org/1998/Math/MathML"><mi>σ</mi></math></mjx-assistive-mml>'
       '</mjx-container></span>')
NOTE = ('<div class="admonition note dlib-provenance"><p class="admonition-title">Where the outputs'
        ' come from</p><p>Outputs from a quick-profile run on cpu, commit 0123456789, started'
        ' 2026-12-01T00:00:00Z, 12.3 s.</p></div>')


def article(body: str, note: bool = True) -> str:
    """A chapter page's article: title, optional provenance note, then ``body``."""
    return (f'<article class="bd-article"><section id="t"><h1>9. A chapter<a class="headerlink"'
            f' href="#t">#</a></h1>{NOTE if note else ""}{body}</section></article>')


CLEAN = article(
    f"<p>The width {MJX} of the posterior, and <code class=\"docutils literal\"><span class="
    f"\"pre\">x[$i]</span></code> in code; a role rendered: <a href=\"#b\">[Wu et al., 2021]</a>."
    "</p>"
    '<div class="highlight-ipython3"><div class="highlight"><pre><span class="n">price</span> = '
    '"$5"  <span class="c1"># ```not a fence``` \\(x\\) {cite:p}`k`</span>\n'
    "print(r'\\alpha')</pre></div></div>"
    '<table class="table" id="m32-tab"><caption>Table 2: failure rates</caption><tbody><tr><td>'
    "8.0</td></tr></tbody></table>"
    '<div class="solution dropdown admonition toggle-hidden"><p class="admonition-title">Solution'
    f"</p><p>Since {MJX}, the average is {MJX}.</p></div>"
    '<p>Instructors: solutions lie between <code class="docutils literal"><span class="pre">#'
    '</span> <span class="pre">BEGIN</span> <span class="pre">SOLUTION</span></code> markers.</p>'
)


def test_clean_page_passes():
    assert cb.analyse_html(CLEAN, chapter=True) == []


def test_page_text_separates_prose_code_and_math():
    text = cb.page_text(CLEAN)
    prose = " ".join(text.prose)
    assert "The width of the posterior" in prose  # the typeset math is left out
    assert "σ" not in prose and "mjx" not in prose
    assert "#" not in prose.split("9. A chapter")[1][:3]  # the permalink's '#' is decoration
    assert any('price = "$5"' in block for block in text.code)
    assert "x[$i]" in text.inline_code
    assert text.provenance == [
        "Where the outputs come from Outputs from a quick-profile run on cpu, commit 0123456789,"
        " started 2026-12-01T00:00:00Z, 12.3 s."]


def one(problems: list[str], *needles: str) -> None:
    """Exactly one problem, and it mentions every needle."""
    assert len(problems) == 1, problems
    for needle in needles:
        assert needle in problems[0], problems


def test_chapter_32_table_turned_into_bullets():
    # what {cite:p} in a {list-table}'s opening line made of chapter 32's Table 2
    body = ("<p>```{list-table} Failure rates (%, MIG &lt; 0.1) in the paper’s Table 2 "
            '[<a href="#id5">Wu <em>et al.</em>, 2021</a>], rows dSprites. :header-rows: 1 :name: '
            "m32-tab-table2</p><ul><li><ul><li><p>dataset</p></li><li><p>DEFT</p></li></ul></li>"
            '</ul><div class="highlight-default notranslate"><div class="highlight"><pre><span>'
            '</span>\n```{code-cell} ipython3\nif config.profile() == "full":\n    assert ok\n'
            "</pre></div></div>")
    problems = cb.analyse_html(article(body), chapter=True)
    assert len(problems) == 5, problems
    assert any("'```'" in p and "list-table" in p for p in problems), problems
    assert any("MyST directive '{list-table}'" in p for p in problems), problems
    assert any("':header-rows:'" in p for p in problems), problems
    assert any("':name:'" in p for p in problems), problems
    # the next code cell, swallowed into a plain code block
    assert problems[-1] == ("MyST directive shown as code (default highlighting): "
                            "'```{code-cell} ipython3'")


def test_myst_shown_on_purpose_in_a_markdown_block_passes():
    # the preface shows how an exercise is written, in a block highlighted as Markdown
    body = ('<div class="highlight-md notranslate"><div class="highlight"><pre>```{exercise}\n'
            ":label: ex-1\nA question...\n```\n\n:::{note}\nx\n:::\n</pre></div></div>")
    assert cb.analyse_html(article(body), chapter=True) == []
    text = cb.page_text(article(body))
    assert text.code_lang == ["md"]
    # the same block without its language would be flagged
    assert cb.code_problems(text.code) == [
        "MyST directive shown as code (no highlighting): '```{exercise}'",
        "MyST directive shown as code (no highlighting): ':::{note}'"]


@pytest.mark.parametrize("text, needle", [
    ("see {cite:p}`wu2021deft` for the table", "{cite:p}`"),
    ("as {eq}`m10-elbo` shows", "{eq}`"),
    ("the bound {math}`x^2` holds", "{math}`"),
    (":::{note} Beware", "':::'"),
    ("{exercise} :label: ex-1 Compute the KL.", "{exercise}"),
    ("{solution-start} ex-m10-channel :class: dropdown", "{solution-start}"),
    ("(m30-exercises)=", "target label"),
    ("~~~python", "'~~~'"),
])
def test_literal_myst_syntax_is_flagged(text, needle):
    problems = cb.analyse_html(article(f"<p>{text}</p>"), chapter=True)
    assert problems and any(needle in p for p in problems), problems


def test_garbled_math_of_chapter_10():
    # 10_beta_vae.md:612: a wrapped line starting with "- 1)" turned the rest into a list
    body = (f"<p>and with {MJX} the average is $\\tfrac12(1 - \\log\\sigma^2</p>"
            '<ul class="simple"><li><ol class="arabic simple"><li><p>= -\\log\\sigma'
            f"{MJX}1 + s^2/\\sigma^2{MJX}\\sigma \\approx 1.4 \\times 10^{{-6}}$ of the prior’s"
            " width</p></li></ol></li></ul>")
    problems = cb.analyse_html(article(body), chapter=True)
    assert len(problems) == 2, problems
    assert all("math delimiter '$'" in p for p in problems), problems


def test_tex_left_outside_math():
    one(cb.analyse_html(article("<ul><li><p>= -\\log\\sigma, the width</p></li></ul>"),
                        chapter=True), "TeX command '\\log'")
    # MathJax never ran: the span still holds its delimiters
    one(cb.analyse_html(article('<p>width <span class="math">\\(\\sigma\\)</span></p>'),
                        chapter=True), "math delimiter '\\('")
    one(cb.analyse_html(article('<div class="math">\\[x^2\\]</div>'), chapter=True),
        "math delimiter '\\['")
    one(cb.analyse_html(article("<p>an unbalanced $$ display</p>"), chapter=True), "'$'")


def test_math_not_listed_formula_by_formula_when_mathjax_did_not_run():
    page = article('<p>width <span class="math">\\(\\sigma\\)</span> and ```</p>')
    one(cb.analyse_html(page, chapter=True, typeset=False), "'```'")
    assert len(cb.analyse_html(page, chapter=True)) == 2


def test_mathjax_error_nodes():
    body = ('<p><mjx-container jax="CHTML"><mjx-math><mjx-merror data-mjx-error="Missing'
            ' argument for \\frac" title="Missing argument for \\frac"><mjx-mtext>\\frac{1}'
            "</mjx-mtext></mjx-merror></mjx-math></mjx-container></p>")
    one(cb.analyse_html(article(body), chapter=True), "MathJax error: Missing argument for \\frac")


def test_stray_backtick_of_chapter_30():
    # 30_oat.md:512: "`start + (j +" then a line "1) * check_every`" that became a list
    body = ("<p>row taken after `start + (j +</p><ol><li><ul><li><p>check_every<code>steps),"
            "</code>start<code>(dimension 1)</code>min_steps` steps;</p></li></ul></li></ol>")
    problems = cb.analyse_html(article(body), chapter=True)
    assert len(problems) == 2 and all("stray backtick" in p for p in problems), problems


def test_solution_markers_only_in_code_blocks():
    code = ('<div class="highlight"><pre>def f(kl):\n    # BEGIN SOLUTION\n    return kl\n'
            "    # END SOLUTION\n</pre></div>")
    one(cb.analyse_html(article(code), chapter=True),
        "1 × '# BEGIN SOLUTION'", "1 × '# END SOLUTION'")
    one(cb.analyse_html(article(code * 2), chapter=True), "2 × '# BEGIN SOLUTION'")
    inline = '<p>between <code class="literal">#&nbsp;BEGIN SOLUTION</code> markers</p>'
    assert cb.analyse_html(article(inline), chapter=True) == []


def test_provenance_note_required_on_chapters_only():
    page = article("<p>text</p>", note=False)
    one(cb.analyse_html(page, chapter=True), "Where the outputs come from")
    assert cb.analyse_html(page, chapter=False) == []
    empty_note = article('<div class="admonition dlib-provenance"><p>Where the outputs come from'
                         "</p></div>", note=False)
    one(cb.analyse_html(empty_note, chapter=True), "no 'Where the outputs come from' note")


def test_hidden_dropdowns_are_read():
    body = ('<div class="solution dropdown toggle-hidden" style="display:none"><p>garbled'
            " $x</p></div>")
    one(cb.analyse_html(article(body), chapter=True), "'$'")


def test_unclosed_paragraphs_end_blocks():
    # a hand-written snippet without </p>: the '$' of two paragraphs are not paired up
    problems = cb.prose_problems(cb.page_text("<div><p>one $<p>two $</div>").prose)
    assert len(problems) == 2, problems


def test_images_and_widths():
    assert cb.image_problems([{"src": "a.png", "naturalWidth": 64}]) == []
    one(cb.image_problems([{"src": "missing.png", "naturalWidth": 0}]), "missing.png")
    wide = [{"output": False, "line": "x = 1  # long", "hidden": 40},
            {"output": False, "line": "y = 2  # longer", "hidden": 90},
            {"output": True, "line": "printed", "hidden": 500}]
    one(cb.width_problems(wide), "2 code block(s)", "by 90 px", "y = 2")
    assert cb.width_problems(wide[2:]) == []


def test_redirect_and_split_url():
    assert cb.redirect_target('<meta http-equiv="Refresh" content="0; url=book/intro.html" />') \
        == "book/intro.html"
    assert cb.redirect_target("<html><body>no</body></html>") is None
    base = "http://127.0.0.1:8000/"
    assert cb.split_url(base + "chapters/a.html#x%20y", base) == ("chapters/a.html", "x y")
    assert cb.split_url(base + "chapters/", base) == ("chapters/index.html", "")
    assert cb.split_url(base, base) == ("index.html", "")
    assert cb.split_url("https://example.org/a.html", base) is None


def test_link_problems(tmp_path):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "a.html").write_text("<p id='sec'>a</p>")
    (tmp_path / "index.html").write_text("")
    (tmp_path / "data.csv").write_text("1")
    base = "http://127.0.0.1:8000/"
    ids = {"chapters/a.html": {"sec", "ex/1"}}
    links = [base + "chapters/a.html#sec", base + "chapters/a.html", base + "chapters/a.html#ex/1",
             base + "data.csv", base, "https://example.org/missing.html",
             base + "chapters/b.html", base + "chapters/a.html#nope", base + "chapters/a.html#nope"]
    problems = cb.link_problems(links, base, tmp_path, ids)
    assert problems == ["broken link: chapters/b.html (no file chapters/b.html)",
                        "broken anchor: chapters/a.html#nope (no id 'nope' in chapters/a.html)"]


def test_mathjax_urls_map_into_the_local_copy(tmp_path):
    (tmp_path / "es5").mkdir()
    (tmp_path / "es5" / "tex-mml-chtml.js").write_text("//")
    cdn = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/"
    assert cb._mathjax_file(cdn + "tex-mml-chtml.js", tmp_path) == \
        (tmp_path / "es5" / "tex-mml-chtml.js").resolve()
    assert cb._mathjax_file(cdn.replace("@3/", "@3.2.2/") + "tex-mml-chtml.js", tmp_path)
    assert cb._mathjax_file(cdn + "missing.js", tmp_path) is None
    assert cb._mathjax_file(cdn + "../../../../etc/passwd", tmp_path) is None
    assert cb._mathjax_file("https://cdn.jsdelivr.net/npm/other@3/x.js", tmp_path) is None


def test_fetch_mathjax_uses_the_cache_and_needs_npm_once(tmp_path, monkeypatch):
    monkeypatch.setenv("DLIB_CACHE", str(tmp_path))
    monkeypatch.setattr(cb.shutil, "which", lambda name: None)  # no npm on this machine
    with pytest.raises(RuntimeError, match="npm is needed once"):
        cb.fetch_mathjax()
    there = tmp_path / f"mathjax-{cb.MATHJAX_VERSION}" / "es5" / "tex-mml-chtml.js"
    there.parent.mkdir(parents=True)
    there.write_text("//")
    assert cb.fetch_mathjax() == there.parent.parent  # already there: npm is not asked
    assert cb.mathjax_dir() == there.parent.parent


def test_missing_tools_skip_outside_ci_and_fail_in_ci(monkeypatch, capsys):
    monkeypatch.setattr(cb, "missing_tools", lambda: ["Chromium"])
    monkeypatch.setenv("CI", "")
    assert cb.main(["--html", "/nonexistent"]) == 0
    assert "SKIPPED: missing Chromium" in capsys.readouterr().out
    monkeypatch.setenv("CI", "true")
    assert cb.main(["--html", "/nonexistent"]) == 1
    assert "FAILED: missing Chromium" in capsys.readouterr().err


# --- a synthetic site in the real browser --------------------------------------------------------

def _png(width: int, height: int) -> bytes:
    """A grey PNG image of the given size (no image library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0,
                                                                  0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<script>window.MathJax = {{"options": {{"processHtmlClass": "math"}}}}</script>
<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>
<script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.4/require.min.js"></script>
</head><body><main><article class="bd-article"><section id="top"><h1>Page</h1>
{body}</section></article></main></body></html>"""


@pytest.fixture(scope="module")
def browser_ready():
    missing = cb.missing_tools()
    if missing:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"the browser check needs {'; '.join(missing)}")
        pytest.skip(f"missing {'; '.join(missing)}")


@pytest.mark.browser
def test_synthetic_site_in_chromium(tmp_path, browser_ready):
    site = tmp_path / "html"
    (site / "chapters").mkdir(parents=True)
    (site / "img.png").write_bytes(_png(8, 6))
    (site / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=good.html" />')
    (site / "good.html").write_text(PAGE.format(body=(
        '<p>Math <span class="math">\\(\\frac{1}{2}\\sigma^2\\)</span> typesets.</p>'
        '<img src="img.png" alt="fine"><p><a href="chapters/bad.html#sec">on</a>'
        ' <a href="#top">up</a> <a href="https://example.org/">out</a></p>')))
    (site / "chapters" / "bad.html").write_text(PAGE.format(body=(
        '<p id="sec">Broken <span class="math">\\(\\frac{1}\\)</span> and $x left.</p>'
        '<img src="../missing.png" alt="gone"><p><a href="../good.html#nowhere">back</a>'
        ' <a href="../gone.html">gone</a></p>'
        "<p>```{list-table} a table</p>")))
    results, shots, blocked = cb.check_site(site, out=tmp_path / "shots", jobs=2,
                                            shots=["good.html", "chapters/bad.html@Broken"])
    by_page = {r.path: r.problems for r in results}
    assert sorted(by_page) == ["chapters/bad.html", "good.html", "index.html"]
    assert by_page["good.html"] == [] and by_page["index.html"] == []
    bad = "\n".join(by_page["chapters/bad.html"])
    for needle in ("MathJax error: Missing argument for \\frac", "math delimiter '$'",
                   "'```'", "{list-table}", "Where the outputs come from",
                   "image does not load: http://127.0.0.1", "404 for missing.png",
                   "broken anchor: good.html#nowhere", "broken link: gone.html"):
        assert needle in bad, bad
    assert len(by_page["chapters/bad.html"]) == 9, bad
    assert all(Path(s.split(": ", 1)[1]).stat().st_size > 1000 for s in shots), shots
    assert blocked == {"https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.4/require.min.js"}
