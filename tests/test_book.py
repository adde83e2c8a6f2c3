"""The book builds offline with warnings as errors, and its explorer moves in a real browser without a kernel."""
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    if not jb.exists():
        pytest.skip("jupyter-book is not installed (pip install -e '.[book]')")
    proc = subprocess.run([str(jb), "build", str(ROOT), "--path-output", str(out), "--warningiserror", "--keep-going"],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out / "_build" / "html"


@pytest.mark.book
def test_book_builds_with_lesson_and_colab_button(built_book):
    page = (built_book / "lessons" / "01_forward_noising.html").read_text()
    assert (built_book / "book" / "intro.html").is_file()
    assert "colab.research.google.com/github/" in page and "lessons/01_forward_noising.ipynb" in page
    assert "ardiffExplorer(document.getElementById(" in page
    assert "unpkg.com/@jupyter-widgets" not in page  # no widget manager pulled from a CDN


def _chrome():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    opts = Options()
    opts.binary_location = chromium
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--window-size=1200,1000",
              # no network: every http(s) request goes to a closed local port, so only what the book ships loads
              "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.mark.book
def test_static_explorer_moves_in_headless_chromium(built_book):
    d = _chrome()
    try:
        d.get((built_book / "lessons" / "01_forward_noising.html").as_uri())
        time.sleep(1)
        root = d.find_element("css selector", ".ardiff-explorer")
        snap = ("const r = arguments[0]; return [...r.querySelectorAll('canvas')].map(c => c.toDataURL())"
                ".concat([r.querySelector('[data-out=readout]').textContent])")
        move = ("const r = arguments[0], el = r.querySelector(arguments[1]); el.value = arguments[2];"
                "el.dispatchEvent(new Event('input'))")
        before = d.execute_script(snap, root)
        assert before[-1].startswith("t = 600")
        d.execute_script(move, root, "[data-p=t]", "50")
        after_t = d.execute_script(snap, root)
        assert after_t[-1].startswith("t = 50")
        assert all(a != b for a, b in zip(before[:-1], after_t[:-1])), "a canvas did not redraw when t moved"
        d.execute_script(move, root, "[data-p=kind]", "cosine")
        after_kind = d.execute_script(snap, root)
        assert after_kind[-1] != after_t[-1] and after_kind[0] != after_t[0]
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE" and "ardiff" in e["message"]]
        assert not errors, errors
    finally:
        d.quit()


@pytest.mark.book
def test_math_is_typeset_offline(built_book):
    """MathJax ships with the book: on a lesson page opened from disk with no network, every equation is typeset
    (MathJax output elements) and no raw TeX delimiters are left in the visible text."""
    page_path = built_book / "lessons" / "01_forward_noising.html"
    html = page_path.read_text()
    assert "cdn.jsdelivr.net/npm/mathjax" not in html and "_static/mathjax/tex-chtml.js" in html
    assert (built_book / "_static" / "mathjax" / "tex-chtml.js").is_file()
    d = _chrome()
    try:
        d.get(page_path.as_uri())
        typeset = "return document.querySelectorAll('mjx-container').length"
        deadline = time.time() + 30
        while d.execute_script(typeset) == 0 and time.time() < deadline:
            time.sleep(0.5)
        assert d.execute_script(typeset) > 20, "equations were not typeset offline"
        time.sleep(1)  # let MathJax finish the page
        text = d.execute_script("return document.querySelector('main').innerText")
        raw = [m for m in ("\\(", "\\[", "$$") if m in text]
        assert not raw, f"raw TeX left on the page: {raw}"
    finally:
        d.quit()


def test_models_page_is_generated_from_the_manifest(tmp_path):
    """book/models.md is what `python -m ardiff models --book book` writes today: it cannot drift from the cards."""
    from ardiff.cli import models_page

    fresh = models_page(tmp_path).read_text()
    assert (ROOT / "book" / "models.md").read_text() == fresh, "run `python -m ardiff models --book book`"
    from ardiff import zoo
    for name in zoo.names():
        if zoo.weights_path(name).is_file():
            assert zoo.card(name)["sha256"] in fresh
            assert (ROOT / "book" / "models" / f"{name}-loss.png").is_file()


def test_every_reference_has_a_url_or_doi():
    """Each bibliography entry resolves to a source a reader can open, except those marked as not online."""
    import re
    bib = (ROOT / "book" / "references.bib").read_text()
    entries = re.findall(r"@\w+\{([\w.-]+),(.*?)\n\}", bib, flags=re.S)
    assert len(entries) >= 15
    missing = [k for k, body in entries if not re.search(r"^\s*(url|doi)\s*=", body, flags=re.M)
               and "not online" not in body]
    assert not missing, f"references without a URL or DOI: {missing}"
