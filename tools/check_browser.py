"""Open every page of the built book in headless Chromium and check what a reader would see.

The static checks (the strict Sphinx build, ``tools/check_pairs.py``) read sources; they cannot see
that a ``{cite:p}`` in a directive's opening line turned a table into bullets, or that a wrapped
line starting with ``- `` turned half a formula into a list. This check looks at the rendered
pages after MathJax has run, and fails on

* MyST syntax left as text: code fences, ``:::``, roles and directives (``{cite:p}`...```,
  ``{list-table}``), target labels;
* math that did not typeset: MathJax error nodes, ``$``, ``\\(``, ``\\[`` or TeX commands left
  in the prose (any ``$`` outside code and math counts: the book has no literal dollar signs in
  its prose), a stray backtick (inline code that did not render);
* images that do not load, and same-site files that answer with an error;
* broken internal links and anchors (every same-site ``href`` names an existing file, and its
  ``#fragment`` an element of that page);
* a chapter page (``chapters/``) without the "outputs from" note of ``book/_ext/provenance.py``;
* ``# BEGIN SOLUTION`` / ``# END SOLUTION`` markers in displayed code;
* code blocks (not outputs) wider than the page at a 1280-pixel-wide window, whose ends a reader
  does not see (``--allow-wide-code`` turns this one off).

Text is read from the DOM, so the content of closed dropdowns (solutions) is checked too.

The pages are served from ``_build/html`` by a local HTTP server. The book loads MathJax from a
CDN; this check answers those requests with a local copy of the same release (the npm package
``mathjax``, fetched once with npm into ``$DLIB_CACHE`` or ``~/.cache/dlib/``), and blocks every
other off-site request (the widget manager and require.js: embedded widgets are not checked), so
it needs no network at test time. Screenshots of a few pages go to ``_build/browser/`` for a
person to look at, beside ``report.txt``.

Usage::

    python tools/check_browser.py [--html _build/html] [--out _build/browser] [--jobs 3]
    python tools/check_browser.py --fetch-mathjax   # the set-up: fetch the local MathJax copy

Exit status: 0 when every page passes, 1 when a page has a problem, or when the browser, Playwright
or MathJax is missing under ``CI=true``; outside CI a missing tool prints ``SKIPPED`` and exits 0.
The page analysis (:func:`analyse_html` and friends) works on HTML text without a browser;
``tests/test_browser_check.py`` tests it on small snippets.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the MathJax release the CDN answers for the book's ``mathjax@3`` URL (its newest 3.x)
MATHJAX_VERSION = "3.2.2"
#: how long a page may take, after its load event, to show MathJax's startup object
MATHJAX_LOAD_MS = 10_000
#: candidates for the browser; Debian's package installs /usr/bin/chromium
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
#: pages shown in screenshots: ``PAGE`` (top of the page) or ``PAGE@TEXT`` (scrolled to the first
#: element whose text starts with TEXT, dropdowns opened)
DEFAULT_SHOTS = (
    "book/intro.html",
    "chapters/10_beta_vae.html",
    "chapters/10_beta_vae.html@Solution to",
    "chapters/32_deft.html@The comparison the result file is made for",
)


# --- page analysis (no browser needed) -----------------------------------------------------------

#: elements whose text a reader does not read as prose (code is checked separately)
_SKIP = frozenset({"script", "style", "template", "noscript", "svg", "math", "mjx-container",
                   "mjx-assistive-mml", "head", "title"})
_CODE = frozenset({"pre", "code", "kbd", "samp", "tt"})
#: elements that end a run of text: ``$`` are counted, and fences looked for, per block
_BLOCK = frozenset({
    "address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "details", "div",
    "dl", "dt", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "hr", "html", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "param", "source", "track", "wbr"})
#: classes whose text is decoration, not content (a heading's permalink "#", a toggle's label)
_SKIP_CLASSES = frozenset({"headerlink", "toggle-button"})
#: elements closed implicitly by HTML when a sibling starts (the serialised DOM closes them all,
#: but a hand-written snippet may not)
_IMPLIED_END = {"p": _BLOCK - {"br", "hr"}, "li": frozenset({"li"}), "dt": frozenset({"dt", "dd"}),
                "dd": frozenset({"dt", "dd"}), "tr": frozenset({"tr"}),
                "td": frozenset({"td", "th", "tr"}), "th": frozenset({"td", "th", "tr"})}

_FENCE = re.compile(r"```|~~~|(?<![:\w]):::")
_ROLE = re.compile(r"\{[a-zA-Z][\w.-]*(?::[\w.-]+)*\}`")
#: directive names that MyST would have consumed; seen bare as ``{name}`` they are a defect
_DIRECTIVES = (
    "admonition|attention|caution|code|code-block|code-cell|csv-table|danger|dropdown|epigraph|"
    "eval-rst|exercise|exercise-start|exercise-end|figure|glossary|hint|image|important|include|"
    "list-table|literalinclude|margin|math|note|prf:[a-z]+|raw|seealso|sidebar|solution|"
    "solution-start|solution-end|tab-set|tab-item|table|tableofcontents|tip|toctree|topic|warning|"
    "bibliography|glue|glue:[a-z]+"
)
_DIRECTIVE = re.compile(r"\{(?:" + _DIRECTIVES + r")\}")
_OPTION_LINE = re.compile(r"(?:^|\s):(?:name|class|label|header-rows|widths|tags|align|width|"
                          r"figwidth|caption|nowrap|numbered|filter|style|enumerated|"
                          r"stub-columns|dropdown|open):(?:\s|$)")
_TARGET = re.compile(r"(?:^|\s)\([\w.:-]+\)=(?:\s|$)")
_BACKTICK = re.compile(r"`")
_TEX_DELIM = re.compile(r"\$|\\\(|\\\)|\\\[|\\\]")
_TEX_COMMAND = re.compile(r"\\[a-zA-Z]{2,}")
_FENCED_DIRECTIVE = re.compile(r"^[ \t]*(?:```+|~~~+|:::+)[ \t]*\{[\w:.-]+\}.*$", re.MULTILINE)
_MYST_LANGS = frozenset({"md", "markdown", "myst", "rst", "restructuredtext"})
_MARKER = re.compile(r"^[ \t]*(#[ \t]*(?:BEGIN|END) SOLUTION\b.*)$", re.MULTILINE)


@dataclass
class PageText:
    """What a page shows: prose blocks, code blocks, MathJax errors, the provenance note."""

    prose: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    #: the highlighting language of each code block (``highlight-LANG`` of Sphinx; "" if none)
    code_lang: list[str] = field(default_factory=list)
    inline_code: list[str] = field(default_factory=list)
    math_errors: list[str] = field(default_factory=list)
    provenance: list[str] = field(default_factory=list)


class _Walker(HTMLParser):
    """Splits an HTML text into prose blocks and code blocks (see :class:`PageText`)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = PageText()
        self.stack: list[tuple[str, bool, bool, bool]] = []  # tag, skip, code, provenance
        self.langs: list[str] = []  # the highlighting language around each open element
        self.prose: list[str] = []
        self.code: list[str] = []
        self.note: list[str] = []

    # state of the innermost open element
    def _state(self) -> tuple[bool, bool, bool]:
        return self.stack[-1][1:] if self.stack else (False, False, False)

    def _flush_prose(self) -> None:
        text = " ".join("".join(self.prose).split())
        if text:
            self.out.prose.append(text)
        self.prose = []
        self.note.append(" ")  # a block boundary inside the note separates words too

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        classes = set((attr.get("class") or "").split())
        if tag == "mjx-merror":
            self.out.math_errors.append(attr.get("data-mjx-error") or attr.get("title") or "?")
        while self.stack and tag in _IMPLIED_END.get(self.stack[-1][0], ()):
            self.handle_endtag(self.stack[-1][0])
        skip, code, note = self._state()
        if tag in _BLOCK and not skip:
            self._flush_prose()
        if tag in _VOID:
            return
        skip = skip or tag in _SKIP or bool(classes & _SKIP_CLASSES)
        opens_code = tag in _CODE and not code and not skip
        if opens_code:
            self.prose.append(" ")
        opens_note = "dlib-provenance" in classes and not note
        lang = next((c[len("highlight-"):] for c in classes if c.startswith("highlight-")),
                    self.langs[-1] if self.langs else "")
        self.stack.append((tag, skip, code or tag in _CODE, note or opens_note))
        self.langs.append(lang)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or not any(t == tag for t, *_ in self.stack):
            return
        while self.stack:
            open_tag, skip, code, note = self.stack.pop()
            lang = self.langs.pop()
            if code and not self._state()[1]:  # the outermost code element closes
                text = "".join(self.code)
                if text.strip() and open_tag == "pre":
                    self.out.code.append(text)
                    self.out.code_lang.append(lang)
                elif text.strip():
                    self.out.inline_code.append(text)
                self.code = []
            if note and not self._state()[2]:
                self.out.provenance.append(" ".join("".join(self.note).split()))
                self.note = []
            if open_tag in _BLOCK and not skip:
                self._flush_prose()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        skip, code, note = self._state()
        if skip:
            return
        if note:
            self.note.append(data)
        (self.code if code else self.prose).append(data)

    def close(self) -> None:
        super().close()
        while self.stack:
            self.handle_endtag(self.stack[-1][0])
        self._flush_prose()


def page_text(html: str) -> PageText:
    """Split ``html`` (a page's content after MathJax ran) into what :class:`PageText` holds.

    Text inside MathJax's output (``mjx-container``), scripts and styles is left out; code
    blocks (``pre``) go to ``code``, inline code to ``inline_code``; everything else, hidden
    dropdowns included, is prose (one string per block element, whitespace collapsed).
    """
    walker = _Walker()
    walker.feed(html)
    walker.close()
    return walker.out


def _clip(text: str, start: int, end: int, width: int = 50) -> str:
    """``text`` around ``[start, end)``, at most about ``2 * width`` characters, on one line."""
    lo, hi = max(0, start - width), min(len(text), end + width)
    return ("…" if lo else "") + text[lo:hi] + ("…" if hi < len(text) else "")


def prose_problems(blocks: Iterable[str], math: bool = True) -> list[str]:
    """Defects in the prose: MyST syntax left as text, and math that was not typeset.

    ``blocks`` are the prose blocks of :func:`page_text`; each finding quotes its context.
    ``math=False`` leaves TeX alone (when MathJax did not run, every formula would be listed).
    """
    problems = []
    for text in blocks:
        found = []
        for kind, pattern in (("code fence or colon fence", _FENCE), ("MyST role", _ROLE),
                              ("MyST directive", _DIRECTIVE), ("directive option", _OPTION_LINE),
                              ("MyST target label", _TARGET)):
            for token, m in {m.group().strip(): m for m in pattern.finditer(text)}.items():
                found.append(f"literal {kind} '{token}' in the text: "
                             f"'{_clip(text, m.start(), m.end())}'")
        if not found and (m := _BACKTICK.search(text)) is not None:
            found.append(f"stray backtick (inline code not rendered): "
                         f"'{_clip(text, m.start(), m.end())}'")
        if not math:
            pass
        elif (m := _TEX_DELIM.search(text)) is not None:
            found.append(f"math delimiter '{m.group()}' left in the text (math not typeset): "
                         f"'{_clip(text, m.start(), m.end())}'")
        elif (m := _TEX_COMMAND.search(text)) is not None:
            found.append(f"TeX command '{m.group()}' outside math (math not typeset): "
                         f"'{_clip(text, m.start(), m.end())}'")
        problems += found
    return problems


def code_problems(blocks: Iterable[str], langs: Iterable[str] | None = None) -> list[str]:
    """Defects in code blocks: solution markers (``# BEGIN SOLUTION``) shown, and MyST directives
    (a line starting with ```` ```{name} ```` or ``:::{name}``) in a block that is not MyST
    source (``langs``: each block's language; ``md``/``markdown``/``myst`` blocks may show
    MyST), the sign of a directive whose fence closed early and swallowed what followed."""
    blocks = list(blocks)
    langs = list(langs) if langs is not None else [""] * len(blocks)
    problems = []
    for text, lang in zip(blocks, langs, strict=True):
        if lang in _MYST_LANGS:
            continue
        for m in _FENCED_DIRECTIVE.finditer(text):
            problems.append(f"MyST directive shown as code ({lang or 'no'} highlighting): "
                            f"'{m.group().strip()[:80]}'")
    markers = [m.group(1).strip() for text in blocks for m in _MARKER.finditer(text)]
    if markers:
        counts = ", ".join(f"{markers.count(m)} × {m!r}" for m in dict.fromkeys(markers))
        problems.append(f"solution markers shown in code blocks: {counts}")
    return problems


def analyse_html(html: str, *, chapter: bool, typeset: bool = True) -> list[str]:
    """Every defect the text of one page shows.

    ``chapter``: the page must carry the "outputs from" note; ``typeset=False``: MathJax did not
    run, so TeX in the text is not reported formula by formula.
    """
    text = page_text(html)
    problems = [f"MathJax error: {err}" for err in text.math_errors]
    problems += prose_problems(text.prose, math=typeset)
    problems += code_problems(text.code, text.code_lang)
    if chapter and not any(note.startswith("Where the outputs come from Outputs from")
                           for note in text.provenance):
        problems.append("no 'Where the outputs come from' note (book/_ext/provenance.py): "
                        "re-run tools/execute.py so the notebook records its run")
    return problems


def image_problems(images: Iterable[dict]) -> list[str]:
    """Images that did not load: ``images`` holds ``src`` and ``naturalWidth`` per ``img``."""
    return [f"image does not load: {img['src']}" for img in images
            if not img.get("naturalWidth")]


def width_problems(wide: Iterable[dict]) -> list[str]:
    """Code blocks wider than the page (a reader must scroll sideways; a screenshot or print cuts
    them): ``wide`` holds, per such ``pre``, its longest ``line``, whether it is a cell's
    ``output``, and how many pixels are ``hidden``. Outputs are left to their authors."""
    wide = sorted((w for w in wide if not w.get("output")), key=lambda w: -w["hidden"])
    if not wide:
        return []
    return [f"{len(wide)} code block(s) wider than the page (cut off; the widest by "
            f"{wide[0]['hidden']} px): {wide[0]['line'].strip()[:100]!r}"]


def redirect_target(html: str) -> str | None:
    """The URL a ``<meta http-equiv="refresh" content="0; url=...">`` page sends to, else None."""
    m = re.search(r"<meta[^>]+http-equiv=[\"']?refresh[^>]*>", html, re.IGNORECASE)
    if m is None:
        return None
    url = re.search(r"url=([^\"'>\s]+)", m.group(), re.IGNORECASE)
    return url.group(1) if url else None


def split_url(url: str, base: str) -> tuple[str, str] | None:
    """``(path, fragment)`` of a same-site ``url`` relative to ``base``; ``None`` for other sites.

    The path is relative to the site's root (``chapters/01_x.html``); a folder's URL names its
    ``index.html``; the fragment is percent-decoded ("" when absent).
    """
    if not url.startswith(base):
        return None
    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parts.path)[len(urllib.parse.urlsplit(base).path):]
    if path == "" or path.endswith("/"):
        path += "index.html"
    return path, urllib.parse.unquote(parts.fragment)


def link_problems(links: Iterable[str], base: str, site: Path,
                  ids: dict[str, set[str]]) -> list[str]:
    """Same-site links whose file does not exist or whose ``#fragment`` is not an id there.

    ``links`` are absolute URLs, ``base`` the site's URL, ``site`` the folder it serves and
    ``ids`` the ids (and ``a[name]``) of each page seen, by path relative to ``site``.
    Links to other sites are not followed.
    """
    problems = []
    for url in dict.fromkeys(links):
        split = split_url(url, base)
        if split is None:
            continue
        path, fragment = split
        if not (site / path).is_file():
            problems.append(f"broken link: {url[len(base):]} (no file {path})")
        elif fragment and path in ids and fragment not in ids[path]:
            problems.append(f"broken anchor: {url[len(base):]} (no id {fragment!r} in {path})")
    return problems


# --- the local MathJax --------------------------------------------------------------------------

def mathjax_dir() -> Path:
    """Where the local copy of MathJax lives (it may not exist yet): in dlib's cache folder,
    ``$DLIB_CACHE`` or ``~/.cache/dlib`` (as ``dlib.config.cache_dir``)."""
    cache = os.environ.get("DLIB_CACHE") or Path.home() / ".cache" / "dlib"
    return Path(cache) / f"mathjax-{MATHJAX_VERSION}"


def fetch_mathjax() -> Path:
    """Fetch the npm package ``mathjax@MATHJAX_VERSION`` into the cache, once; return its folder.

    Uses ``npm pack`` (the npm registry, integrity checked by npm); nothing happens when the copy
    is there already.
    """
    target = mathjax_dir()
    if (target / "es5" / "tex-mml-chtml.js").is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed once to fetch MathJax (apt-get install npm), or put the "
                           f"npm package mathjax@{MATHJAX_VERSION} unpacked at {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        subprocess.run([npm, "pack", f"mathjax@{MATHJAX_VERSION}", "--silent"], cwd=tmp,
                       check=True, stdout=subprocess.DEVNULL)
        (tarball,) = Path(tmp).glob("mathjax-*.tgz")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarball) as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12: refuse odd members
                tar.extractall(unpacked, filter="data")
            else:
                tar.extractall(unpacked)
        shutil.rmtree(target, ignore_errors=True)
        (unpacked / "package").rename(target)
    return target


def _mathjax_file(url: str, local: Path) -> Path | None:
    """The local file for a CDN URL of MathJax 3 (``.../mathjax@3/es5/...``), else ``None``."""
    m = re.search(r"/mathjax@3(?:\.[\d.]+)?/(.+)$", urllib.parse.urlsplit(url).path)
    if m is None:
        return None
    path = (local / m.group(1)).resolve()
    return path if path.is_relative_to(local.resolve()) and path.is_file() else None


# --- the browser run ----------------------------------------------------------------------------

_EXTRACT_JS = """async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(img => {
    img.loading = 'eager';
    if (img.complete) return null;
    return new Promise(done => {
      img.addEventListener('load', done); img.addEventListener('error', done);
      setTimeout(done, 15000);
    });
  }));
  const root = document.querySelector('article.bd-article') || document.querySelector('main')
    || document.body;
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id)
    .concat([...document.querySelectorAll('a[name]')].map(e => e.name));
  return {
    html: root.outerHTML,
    images: imgs.map(img => ({src: img.currentSrc || img.src, naturalWidth: img.naturalWidth})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: ids,
    wide: [...root.querySelectorAll('pre')].filter(pre => pre.scrollWidth > pre.clientWidth + 2)
      .map(pre => ({
        output: !!pre.closest('.cell_output, .output'),
        line: pre.textContent.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), ''),
        hidden: pre.scrollWidth - pre.clientWidth,
      })),
  };
}"""

_MATHJAX_JS = """async () => {
  if (!document.querySelector('script[src*="mathjax"]')) return 'none';
  const t0 = Date.now();
  while (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
    if (Date.now() - t0 > %d) return 'MathJax did not load';
    await new Promise(r => setTimeout(r, 50));
  }
  await MathJax.startup.promise;
  return 'typeset';
}"""

_SHOW_JS = """(text) => {
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  document.querySelectorAll('details').forEach(e => { e.open = true; });
  const all = [...document.querySelectorAll('article p, article h1, article h2, article h3, '
    + 'article .admonition-title, article li, article caption')];
  const hit = all.find(e => e.textContent.trim().startsWith(text));
  if (!hit) return false;
  hit.scrollIntoView({block: 'start'});
  window.scrollBy(0, -80);
  return true;
}"""


@dataclass
class PageResult:
    """One page's outcome."""

    path: str
    problems: list[str]
    seconds: float
    links: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    images: int = 0
    local_links: int = 0


def _serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``site`` on a free localhost port, in a daemon thread; return the server and URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # noqa: D102
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/"


async def _check_page(context, base: str, path: str, timeout_s: float,
                      wide_code: bool) -> PageResult:
    t0 = time.monotonic()
    problems: list[str] = []
    page = await context.new_page()

    def on_response(response) -> None:
        if response.url.startswith(base) and response.status >= 400:
            problems.append(f"{response.status} for {response.url[len(base):]}")

    page.on("response", on_response)

    async def load() -> tuple[dict, bool]:
        await page.goto(base + path, wait_until="load", timeout=timeout_s * 1000)
        # MathJax is a deferred script: it has run by the load event, or it never will
        state = await page.evaluate(_MATHJAX_JS % MATHJAX_LOAD_MS)
        if state not in ("none", "typeset"):
            problems.append(f"{state} (math left as TeX; not checked formula by formula)")
        return await page.evaluate(_EXTRACT_JS), state in ("none", "typeset")

    try:
        data, typeset = await asyncio.wait_for(load(), timeout_s)
    except Exception as err:  # noqa: BLE001 -- any failure to load is the page's problem
        reason = "timed out" if isinstance(err, asyncio.TimeoutError) else str(err).splitlines()[0]
        problems.append(f"page did not load or typeset within {timeout_s:g} s: "
                        f"{type(err).__name__}: {reason}")
        await page.close()
        return PageResult(path, problems, time.monotonic() - t0)
    await page.close()
    problems += analyse_html(data["html"], chapter=path.startswith("chapters/"),
                             typeset=typeset)
    problems += image_problems(data["images"])
    if wide_code:
        problems += width_problems(data["wide"])
    return PageResult(path, problems, time.monotonic() - t0, data["links"], set(data["ids"]),
                      len(data["images"]))


async def _screenshot(context, base: str, spec: str, out: Path) -> str:
    path, _, text = spec.partition("@")
    page = await context.new_page()
    try:
        await page.goto(base + path, wait_until="load")
        await asyncio.wait_for(page.evaluate(_MATHJAX_JS % MATHJAX_LOAD_MS), 60)
        name = re.sub(r"[^\w.-]+", "_", spec.replace(".html", "")).strip("_") + ".png"
        if text and not await page.evaluate(_SHOW_JS, text):
            return f"{spec}: text not found, no screenshot"
        await page.wait_for_timeout(300)
        await page.screenshot(path=str(out / name))
        return f"{spec}: {out / name}"
    finally:
        await page.close()


async def _run(site: Path, pages: list[str], out: Path, jobs: int, shots: list[str],
               browser_path: str, local_mathjax: Path, timeout_s: float,
               wide_code: bool) -> tuple[list[PageResult], list[str], set[str]]:
    from playwright.async_api import async_playwright

    server, base = _serve(site)
    blocked: set[str] = set()

    async def route(route) -> None:
        url = route.request.url
        if url.startswith(base):
            await route.continue_()
        elif (local := _mathjax_file(url, local_mathjax)) is not None:
            await route.fulfill(path=str(local))
        else:
            blocked.add(urllib.parse.urlsplit(url)._replace(query="", fragment="").geturl())
            await route.abort()

    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=browser_path)
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            await context.route("**/*", route)
            queue: asyncio.Queue[str] = asyncio.Queue()
            results: list[PageResult] = []
            for p in pages:
                target = redirect_target((site / p).read_text(encoding="utf-8", errors="replace"))
                if target is None:
                    queue.put_nowait(p)
                else:  # a redirect: its target must exist; nothing to look at
                    results.append(PageResult(p, [], 0.0, [urllib.parse.urljoin(base + p, target)]))

            async def worker() -> None:
                while not queue.empty():
                    path = queue.get_nowait()
                    results.append(await _check_page(context, base, path, timeout_s, wide_code))

            await asyncio.gather(*(worker() for _ in range(max(1, jobs))))
            shot_lines = [await _screenshot(context, base, spec, out) for spec in shots
                          if (site / spec.partition("@")[0]).is_file()]
            await browser.close()
    finally:
        server.shutdown()
        server.server_close()
    ids = {r.path: r.ids for r in results}
    for r in results:
        r.problems += link_problems(r.links, base, site, ids)
        r.local_links = sum(url.startswith(base) for url in set(r.links))
    return sorted(results, key=lambda r: r.path), shot_lines, blocked


def site_pages(site: Path) -> list[str]:
    """Every HTML page of the built book, relative to ``site`` (assets folders left out)."""
    pages = (p.relative_to(site) for p in site.rglob("*.html"))
    assets = ("_static", "_sources", "_images")
    return sorted(p.as_posix() for p in pages if p.parts[0] not in assets)


def find_browser() -> str | None:
    """The Chromium to drive: ``$DLIB_CHROMIUM`` or a system install, else ``None``."""
    for candidate in (os.environ.get("DLIB_CHROMIUM"), *CHROMIUM_PATHS):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_tools() -> list[str]:
    """What the browser check needs and this machine lacks (empty when it can run)."""
    missing = []
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright (pip install -e '.[test]')")
    if find_browser() is None:
        missing.append("Chromium (apt-get install -y --no-install-recommends chromium, "
                       "or set DLIB_CHROMIUM)")
    if not (mathjax_dir() / "es5" / "tex-mml-chtml.js").is_file():
        missing.append(f"the local MathJax {MATHJAX_VERSION} (python tools/check_browser.py "
                       "--fetch-mathjax)")
    return missing


def check_site(site: Path, pages: list[str] | None = None, *, out: Path, jobs: int = 3,
               shots: Iterable[str] = DEFAULT_SHOTS, timeout_s: float = 60.0,
               wide_code: bool = True) -> tuple[list[PageResult], list[str], set[str]]:
    """Open ``pages`` of the site in ``site`` (default: all) in Chromium and check each.

    ``wide_code``: also fail on code blocks wider than the page (:func:`width_problems`).
    Returns the results by page, the screenshot lines (``shots`` are taken into ``out``) and the
    off-site URLs that were blocked. Needs Playwright, Chromium and the local MathJax
    (see :func:`missing_tools`).
    """
    browser = find_browser()
    if browser is None:
        raise RuntimeError("no Chromium found (apt-get install chromium, or set DLIB_CHROMIUM)")
    out.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_run(site.resolve(), pages or site_pages(site), out, jobs,
                            list(shots), browser, mathjax_dir(), timeout_s, wide_code))


def main(argv: list[str] | None = None) -> int:
    """Run the check; print a per-page report; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html",
                        help="the built book (default: _build/html)")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "browser",
                        help="screenshots and report.txt go here (default: _build/browser)")
    parser.add_argument("--jobs", type=int, default=3, help="pages open at once (default 3)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per page")
    parser.add_argument("--page", action="append", default=[],
                        help="check only this page (relative to --html; repeatable)")
    parser.add_argument("--shot", action="append", default=None,
                        help="screenshot PAGE or PAGE@TEXT (repeatable; default: a few pages)")
    parser.add_argument("--allow-wide-code", action="store_true",
                        help="do not fail on code blocks wider than the page")
    parser.add_argument("--fetch-mathjax", action="store_true",
                        help="fetch the local MathJax copy if absent, then exit")
    args = parser.parse_args(argv)
    in_ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

    if args.fetch_mathjax:
        try:
            print(f"MathJax {MATHJAX_VERSION}: {fetch_mathjax()}")
        except (RuntimeError, subprocess.CalledProcessError, OSError) as err:
            print(f"could not fetch MathJax: {err}", file=sys.stderr)
            return 1
        return 0

    missing = missing_tools()
    if missing:
        what = "; ".join(missing)
        if in_ci:
            print(f"browser check FAILED: missing {what}", file=sys.stderr)
            return 1
        print(f"browser check SKIPPED: missing {what}")
        return 0
    site = args.html.resolve()
    if not (site / "index.html").is_file():
        print(f"no built book at {site}: run jupyter-book build . first", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.png"):
        old.unlink()

    t0 = time.monotonic()
    results, shots, blocked = check_site(
        site, args.page, out=args.out, jobs=args.jobs,
        shots=DEFAULT_SHOTS if args.shot is None else args.shot, timeout_s=args.timeout,
        wide_code=not args.allow_wide_code)
    lines = []
    for r in results:
        lines.append(f"{'ok  ' if not r.problems else 'FAIL'} {r.path} ({r.seconds:.1f} s)")
        lines += [f"       - {p}" for p in r.problems]
    failed = [r for r in results if r.problems]
    lines.append("")
    lines.append(f"{len(results)} pages, {len(failed)} with problems, "
                 f"{sum(len(r.problems) for r in failed)} problems; checked "
                 f"{sum(r.images for r in results)} images and "
                 f"{sum(r.local_links for r in results)} same-site links; "
                 f"{time.monotonic() - t0:.0f} s")
    if blocked:
        lines.append(f"off-site requests blocked (not checked): {', '.join(sorted(blocked))}")
    lines += [f"screenshot {s}" for s in shots]
    report = "\n".join(lines)
    print(report)
    (args.out / "report.txt").write_text(report + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
