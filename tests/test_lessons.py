"""Every lesson executes top to bottom in the quick profile; its own assertions check what it claims."""
import os
import re
from pathlib import Path

import nbformat
import pytest

from ardiff import zoo
from ardiff.cli import execute_notebook, has_outputs, main

from conftest import ROOT, SHARED_DATA

LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_lessons():
    assert [p.name for p in LESSONS][:1] == ["01_forward_noising.ipynb"]


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    """One model cache for all lessons, run in order: later lessons load the models earlier ones trained."""
    return tmp_path_factory.mktemp("ardiff-cache")


@pytest.mark.lesson
@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_in_quick_profile(path, tmp_path, monkeypatch, model_cache):
    if not os.environ.get("ARDIFF_DATA"):
        if not (SHARED_DATA / "mnist").is_dir():
            pytest.skip("no local data (set ARDIFF_DATA): tests never download")
        monkeypatch.setenv("ARDIFF_DATA", str(SHARED_DATA))
    monkeypatch.setenv("ARDIFF_PROFILE", "quick")
    monkeypatch.setenv("ARDIFF_CACHE", str(model_cache))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / path.name
    info = execute_notebook(path, out, timeout=600)
    assert info["profile"] == "quick"
    nb = nbformat.read(out, as_version=4)
    assert has_outputs(nb) and nb.metadata["ardiff"]["profile"] == "quick"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_stored_outputs_say_where_they_came_from(path):
    nb = nbformat.read(path, as_version=4)
    assert has_outputs(nb), f"{path.name} is committed without outputs"
    meta = nb.metadata.get("ardiff", {})
    assert meta.get("profile") in ("quick", "full") and meta.get("device"), f"{path.name}: no profile/device recorded"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_stored_outputs_come_from_the_shipped_weights(path):
    """A lesson that loads shipped models stores outputs of the full profile, made with exactly those weights."""
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    used = sorted(set(re.findall(r'zoo\.(?:load|card|pretrained)\("([\w.-]+)"', code)))
    meta = nb.metadata.get("ardiff", {})
    for name in used:
        assert meta.get("weights", {}).get(name) == zoo.card(name)["sha256"], \
            f"{path.name}: stored outputs were not made with the shipped {name}; re-run it: ARDIFF_PROFILE=full python -m ardiff run-lessons lessons/{path.name}"
    if used:
        assert meta.get("profile") == "full", f"{path.name}: stored outputs must come from the full profile"


def test_cli_rejects_missing_notebook(capsys):
    with pytest.raises(SystemExit):
        main(["run-lessons", "no_such_lesson.ipynb"])
    assert "notebook not found" in capsys.readouterr().err


def test_cli_missing_only_keeps_executed_notebooks(capsys, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=1)]
    p = tmp_path / "01_x.ipynb"
    nbformat.write(nb, p)
    assert main(["run-lessons", "--missing-only", str(p)]) == 0
    assert "has stored outputs, kept" in capsys.readouterr().out


# Lessons not yet re-rendered with issue 13's learner's pass (exercises, short cells); each needs a full CPU render.
LEARNER_PASS_PENDING = set()
DONE = [p for p in LESSONS if p.name not in LEARNER_PASS_PENDING]


@pytest.mark.parametrize("path", DONE, ids=[p.stem for p in DONE])
def test_exercises_have_hidden_solutions_that_assert(path):
    """At least two exercises: an admonition, a cell to fill in, and an executed solution behind a toggle that
    asserts its answer (so a solution that goes stale fails the lesson's run)."""
    cells = nbformat.read(path, as_version=4).cells
    starts = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("```{admonition} Exercise")]
    assert len(starts) >= 2, f"{path.name}: {len(starts)} exercises"
    for i in starts:
        todo, sol = cells[i + 1], cells[i + 2]
        assert todo.cell_type == "code" and todo.source.startswith("# Exercise"), f"{path.name}: no cell to fill in"
        assert sol.cell_type == "code" and sol.source.startswith("# Solution"), f"{path.name}: no solution"
        assert "hide-cell" in sol.metadata.get("tags", []) and "assert" in sol.source
        assert sol.outputs and sol.execution_count, f"{path.name}: a solution was not executed"


@pytest.mark.parametrize("path", DONE, ids=[p.stem for p in DONE])
def test_cells_are_short_and_outputs_show_no_raw_reprs_or_machine_paths(path):
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        assert c.source.count("\n") < 42, f"{path.name}: a code cell of {c.source.count(chr(10)) + 1} lines:\n{c.source[:200]}"
        for o in c.outputs:
            text = o.get("text", "") + o.get("data", {}).get("text/plain", "")
            assert "tensor(" not in text and not re.search(r"\{'\w+': ", text), f"{path.name}: a raw repr in {text[:200]}"
            assert not re.search(r"<[\w.]+( object)? at 0x[0-9a-f]+>", text), f"{path.name}: an object's repr in {text[:200]}"
            assert not re.search(r"\d+%\|", text), f"{path.name}: a stored progress bar, frozen: {text[:120]}"
            assert "/work/" not in text and "/home/" not in text, f"{path.name}: a machine path in {text[:200]}"


@pytest.mark.parametrize("path", DONE, ids=[p.stem for p in DONE])
def test_lesson_cites_its_sources_and_links_the_notation_page(path):
    text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    keys = set(re.findall(r"\{cite\}`([^`]+)`", text))
    assert keys, f"{path.name} cites nothing with {{cite}}"
    bib = (ROOT / "book" / "references.bib").read_text()
    for key in {k.strip() for ks in keys for k in ks.split(",")}:
        assert f"{{{key}," in bib, f"{path.name}: {key} is not in book/references.bib"
    assert "../book/notation.md" in text, f"{path.name} does not link the notation page"


def test_strip_progress_bars_drops_stored_bars_and_keeps_other_outputs():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from ardiff.cli import strip_progress_bars

    bar = new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                           "text/plain": "training:   0%|          | 0/300 [00:00<?, ?it/s]"})
    widget = new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "y"},
                                              "text/plain": "VBox(children=(FloatSlider(value=0.5),))"})
    text = new_output("stream", name="stdout", text="loss 0.031\n")
    nb = new_notebook(cells=[new_code_cell("train()", outputs=[bar, text, widget])])
    assert strip_progress_bars(nb) == 1
    assert nb.cells[0].outputs == [text, widget]
    assert strip_progress_bars(nb) == 0
