"""The Colab editions: MyST prose turned into plain markdown, the committed editions up to date, the badges."""
import difflib
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from ardiff import colab, mystmd
from ardiff.cli import main
from ardiff.profiles import REPOSITORY

from conftest import ROOT

BIB = """
@inproceedings{ho2020ddpm, title = {DDPM}, author = {Ho, Jonathan and Jain, Ajay and Abbeel, Pieter},
  year = {2020}, url = {https://arxiv.org/abs/2006.11239}}
@inproceedings{nichol2021improved, title = {Improved}, author = {Nichol, Alex and Dhariwal, Prafulla},
  year = {2021}, url = {https://arxiv.org/abs/2102.09672}}
@article{lecun1998, title = {Gradient-based}, author = {LeCun, Yann and Bottou, L{\\'e}on and Bengio, Yoshua},
  year = {1998}, doi = {10.1109/5.726791}}
@article{oord2016, title = {PixelCNN}, author = {van den Oord, Aaron}, year = {2016}}
"""
MYST_LEFT = re.compile(r"\{[a-z:-]+\}`|^\s*(`{3,}|:{3,})\{|:::\{|^\s*\([^()\s]+\)=\s*$", re.M)


@pytest.fixture
def ctx(tmp_path):
    (tmp_path / "refs.bib").write_text(BIB)
    return mystmd.Context(
        lesson="lessons/01_x.ipynb", bib=mystmd.read_bibliography(tmp_path / "refs.bib"),
        glue={"x": {"text/plain": "3.14159"}, "n": {"text/plain": "20000"}, "s": {"text/plain": "'abc'"},
              "w": {"text/markdown": "**3** of 9", "text/plain": "<IPython.core.display.Markdown object>"},
              "fig": {"image/png": "iVBOR", "text/plain": "<Figure>"}},
        labels={"sec-noise": "2. Adding noise"}, equations={"eq-loss": 1})


def md(text, ctx):
    return mystmd.to_markdown(text, ctx)


def test_glue_roles_take_the_stored_value_formatted_as_myst_nb_does(ctx):
    assert md("{glue:text}`x:.1f` and {glue:text}`x:.3e`", ctx) == "3.1 and 3.142e+00"
    assert md("{glue:text}`n:,` digits, {glue:text}`n:.0f`", ctx) == "20,000 digits, 20000"
    assert md("{glue:text}`s`, {glue:text}`x`", ctx) == "abc, 3.14159"   # no spec: str() of the value
    assert md("it beat it in {glue:md}`w` settings", ctx) == "it beat it in **3** of 9 settings"
    assert md("{glue}`w` / {glue:}`x` / {glue:any}`s`", ctx) == "**3** of 9 / 3.14159 / 'abc'"
    assert md("```{glue:figure} fig\nThe caption.\n```", ctx) == f"{mystmd.FIGURE_NOTE}\n\n*The caption.*"


def test_a_missing_glue_key_names_the_lesson_and_the_key(ctx):
    with pytest.raises(ValueError, match=r"lessons/01_x\.ipynb: glue key 'nope'"):
        md("we found {glue:text}`nope:.1f` steps", ctx)
    with pytest.raises(ValueError, match="no text/markdown"):
        md("{glue:md}`x`", ctx)


def test_citations_become_linked_author_year(ctx):
    assert md("DDPM {cite}`ho2020ddpm` trains", ctx) == "DDPM ([Ho et al. 2020](https://arxiv.org/abs/2006.11239)) trains"
    assert md("{cite:p}`nichol2021improved,lecun1998`", ctx) == (
        "([Nichol and Dhariwal 2021](https://arxiv.org/abs/2102.09672); "
        "[LeCun et al. 1998](https://doi.org/10.1109/5.726791))")
    assert md("as {cite:t}`ho2020ddpm` show", ctx) == "as [Ho et al. (2020)](https://arxiv.org/abs/2006.11239) show"
    assert md("{cite:t}`oord2016,ho2020ddpm`", ctx) == "van den Oord (2016) and [Ho et al. (2020)](https://arxiv.org/abs/2006.11239)"
    # the prose already names the work: only the link is added
    assert md("DDPM (Ho et al. 2020 {cite}`ho2020ddpm`)", ctx) == "DDPM (Ho et al. 2020 [↗](https://arxiv.org/abs/2006.11239))"
    with pytest.raises(ValueError, match="citation 'nobody' is not in"):
        md("{cite}`nobody`", ctx)


def test_admonitions_become_a_bold_title_over_a_quote(ctx):
    text = "Before.\n```{admonition} Exercise 1.1: double $T$\n:class: tip\n\nPredict {glue:text}`x:.1f`.\n\nThen measure.\n```\nAfter."
    assert md(text, ctx) == ("Before.\n\n**Exercise 1.1: double $T$**\n\n> Predict 3.1.\n>\n> Then measure.\n\nAfter.")
    assert md(":::{note}\nColon fences too.\n:::", ctx) == "**Note**\n\n> Colon fences too."
    assert md(":::{warning} On the same line.\n:::", ctx) == "**Warning**\n\n> On the same line."
    dropdown = "```{admonition} Solution\n:class: dropdown\nThe answer is 42.\n```"
    assert md(dropdown, ctx) == "**Solution**\n\n> The answer is 42."


def test_nested_fences_and_code_blocks_inside_them(ctx):
    text = ("````{admonition} Outer\n:class: tip\nOuter text.\n```{note}\nInner {math}`x`.\n```\n"
            "```python\nprint('{glue:text}`x`')\n```\n````")
    assert md(text, ctx) == ("**Outer**\n\n> Outer text.\n>\n> **Note**\n>\n> > Inner $x$.\n>\n"
                             "> ```python\n> print('{glue:text}`x`')\n> ```")
    colon = "::::{tip}\nOut.\n:::{hint}\nIn.\n:::\n::::"
    assert md(colon, ctx) == "**Tip**\n\n> Out.\n>\n> **Hint**\n>\n> > In."


def test_cross_references_become_text_or_links(ctx):
    assert md("see {ref}`sec-noise`, {ref}`this section <sec-noise>` and [there](#sec-noise)", ctx) == (
        "see 2. Adding noise, this section and there")
    assert md("{numref}`Figure %s <sec-noise>`", ctx) == "Figure"
    assert md("{doc}`lesson 02 <02_ddpm>`", ctx) == (
        f"[lesson 02]({mystmd.colab_url('colab/02_ddpm.ipynb', ctx.repository)})")
    assert md("[notation](../book/notation.md)", ctx) == f"[notation]({ctx.repository}/blob/main/book/notation.md)"
    assert md("[web](https://example.org/a.md)", ctx) == "[web](https://example.org/a.md)"
    with pytest.raises(ValueError, match="no target"):
        md("{ref}`sec-missing`", ctx)


def test_math_and_label_lines(ctx):
    assert md("(sec-noise)=\n## 2. Adding noise\n\nthe {math}`\\beta_t` row", ctx) == (
        "## 2. Adding noise\n\nthe $\\beta_t$ row")
    text = "```{math}\n:label: eq-loss\nL = \\lVert \\varepsilon \\rVert^2\n```\nBy {eq}`eq-loss`."
    assert md(text, ctx) == "$$\nL = \\lVert \\varepsilon \\rVert^2 \\tag{1}\n$$\n\nBy (1)."
    assert mystmd.find_equations("```{math}\n:label: a\nx\n```\n$$\ny\n$$ (b)\n") == {"a": 1, "b": 2}


def test_unknown_syntax_is_refused(ctx):
    with pytest.raises(ValueError, match=r"role \{foo\}"):
        md("{foo}`bar`", ctx)
    with pytest.raises(ValueError, match=r"directive \{mermaid\}"):
        md("```{mermaid}\ngraph\n```", ctx)


def _repo(tmp_path):
    """A repository with one lesson (a glue output, a timed code cell, machine metadata) and a bibliography."""
    (tmp_path / "lessons").mkdir()
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "references.bib").write_text(BIB)
    glued = new_output("display_data", data={"application/papermill.record/text/plain": "0.1234"},
                       metadata={"scrapbook": {"name": "err", "mime_prefix": "application/papermill.record/"}})
    code = new_code_cell("glue('err', 0.1234)\nprint('hi')", execution_count=3,
                         outputs=[glued, new_output("stream", name="stdout", text="hi\n")],
                         metadata={"tags": ["hide-input"], "execution": {"iopub.status.idle": "2026-11-24T20:31Z"}})
    nb = new_notebook(cells=[new_markdown_cell("# 01 · A lesson\n\n(sec-a)=\n## A\n\nError {glue:text}`err:.2f` "
                                               "{cite}`ho2020ddpm`; see {ref}`sec-a`."), code],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                "language_info": {"name": "python", "version": "3.11.7"},
                                "ardiff": {"device": "cpu (x86_64, 2 cores)", "profile": "full"},
                                "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}})
    nbformat.write(nb, tmp_path / "lessons" / "01_a.ipynb")
    return tmp_path / "lessons" / "01_a.ipynb"


def test_an_edition_keeps_the_code_and_drops_outputs_and_machine_fields(tmp_path):
    lesson = _repo(tmp_path)
    nb = colab.edition(lesson)
    intro, code = nb.cells
    assert "Error 0.12 ([Ho et al. 2020](https://arxiv.org/abs/2006.11239)); see A." in intro.source
    assert intro.source.startswith("# 01 · A lesson\n\n> *The Colab edition of [`lessons/01_a.ipynb`]")
    assert code.source == "glue('err', 0.1234)\nprint('hi')" and code.outputs == [] and code.execution_count is None
    assert code.metadata == {"tags": ["hide-input"]}
    assert nb.metadata["ardiff"] == {"colab_edition_of": "lessons/01_a.ipynb"}
    assert "widgets" not in nb.metadata and nb.metadata["language_info"] == {"name": "python"}
    assert nb.metadata["kernelspec"]["name"] == "python3"
    nbformat.validate(nb)


def test_write_editions_and_the_check_flag(tmp_path, monkeypatch):
    lesson = _repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["colab", "--check"]) == 1 and not (tmp_path / "colab").exists()   # --check writes nothing
    assert main(["colab"]) == 0
    assert main(["colab", "--check"]) == 0 and colab.write_editions(check=True) == []
    assert sorted(p.name for p in (tmp_path / "colab").iterdir()) == ["01_a.ipynb"]   # no temporary files left
    assert main(["colab", "--badges"]) == 0 and colab.badge_line("01_a.ipynb") in lesson.read_text()
    assert colab.write_editions(check=True) == []        # the badge does not reach the edition
    with pytest.raises(SystemExit):
        main(["colab", "--check", "--badges"])
    nb = nbformat.read(lesson, as_version=4)
    nb.cells[0].source += " More."
    nbformat.write(nb, lesson)
    assert colab.write_editions(check=True) == [Path("colab") / "01_a.ipynb"]
    nb.cells[0].source += " {glue:text}`gone`"
    nbformat.write(nb, lesson)
    with pytest.raises(ValueError, match=r"lessons/01_a\.ipynb: glue key 'gone'"):
        colab.write_editions()


COMMITTED = sorted((ROOT / "colab").glob("[0-9][0-9]_*.ipynb"))


def test_the_committed_editions_match_the_lessons(tmp_path):
    lessons = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
    assert [p.name for p in COMMITTED] == [p.name for p in lessons], "run `python -m ardiff colab`"
    colab.write_editions(ROOT / "lessons", tmp_path)
    drifted = [p for p in COMMITTED if p.read_bytes() != (tmp_path / p.name).read_bytes()]
    assert not drifted, f"Colab editions out of date: {[p.name for p in drifted]}; run `python -m ardiff colab`"


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_committed_editions_hold_no_myst_and_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            left = MYST_LEFT.search(cell.source)
            assert left is None, f"{path.name}: MyST left in the markdown: {left[0]!r}"
        elif cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: a code cell has outputs"
    assert nb.metadata["ardiff"] == {"colab_edition_of": f"lessons/{path.name}"}


def test_badges_change_only_the_first_markdown_cell_and_are_idempotent(tmp_path):
    (tmp_path / "lessons").mkdir()
    copy = tmp_path / "lessons" / "03_pixelcnn.ipynb"
    shutil.copy(ROOT / "lessons" / "03_pixelcnn.ipynb", copy)
    assert colab.add_badges(tmp_path / "lessons") == []                    # the committed lessons have theirs
    line = colab.badge_line("03_pixelcnn.ipynb")
    badged = copy.read_text(encoding="utf-8")
    copy.write_text(badged.replace(f'    "{line}\\n",\n    "\\n",\n', "", 1), encoding="utf-8")  # as without a badge
    before = copy.read_text(encoding="utf-8")
    assert before != badged and colab.add_badges(tmp_path / "lessons") == [copy]
    after = copy.read_text(encoding="utf-8")
    assert after == badged
    diff = [l for l in difflib.ndiff(before.splitlines(), after.splitlines()) if l[:1] in "+-"]
    assert diff == [f'+     "{line}\\n",', '+     "\\n",'], diff   # two lines inserted in one source array
    first = next(c for c in nbformat.read(copy, as_version=4).cells if c.cell_type == "markdown")
    assert first.source.startswith(line + "\n\n# 03")
    assert colab.add_badge(copy) is False and copy.read_text(encoding="utf-8") == after
    assert colab.add_badge(copy, "https://github.com/someone/fork") is True   # a new URL replaces the badge
    assert copy.read_text(encoding="utf-8").count("colab-badge.svg") == 1
    assert "colab/03_pixelcnn.ipynb" in line and line.startswith(f"[![Open In Colab]({colab.BADGE})]")


def test_an_edition_is_the_same_with_or_without_the_badge(tmp_path):
    lesson = _repo(tmp_path)
    plain = nbformat.writes(colab.edition(lesson))
    colab.add_badge(lesson)
    assert nbformat.writes(colab.edition(lesson)) == plain


def test_badge_and_url_arguments_are_checked():
    with pytest.raises(ValueError, match="name must be a lesson file name"):
        colab.badge_line("lesson.ipynb")
    with pytest.raises(ValueError, match="repository must be"):
        mystmd.colab_url("colab/01_a.ipynb", "https://gitlab.com/a/b")
    with pytest.raises(ValueError, match="lessons_dir must hold lesson notebooks"):
        colab.write_editions(ROOT / "book")


def test_the_readme_links_every_colab_edition():
    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")):
        assert mystmd.colab_url(f"colab/{path.name}", REPOSITORY) in readme, path.name
    assert colab.readme_links(ROOT / "lessons").count("\n") == len(COMMITTED) - 1
