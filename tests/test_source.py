"""ardiff.show (ardiff.source.show): a library object's source on the page, highlighted in HTML and plain as text."""
import subprocess
import sys

import pytest
from IPython.core.formatters import DisplayFormatter

import ardiff
from ardiff import forward, schedules


def _formatted(obj) -> dict:
    data, _ = DisplayFormatter().format(obj)
    return data


def test_the_source_is_in_the_plain_text_and_the_html():
    shown = ardiff.show(forward.q_sample)
    data = _formatted(shown)
    text, page = data["text/plain"], data["text/html"]
    assert text.startswith("# ardiff.forward.q_sample  (ardiff/forward.py:")
    assert "def q_sample(" in text and "return _q_sample(x0, t, schedule, eps)" in text
    assert "q_sample" in page and "_q_sample" in page and 'style="' in page and "class=" not in page.split("<pre")[1]
    assert page.startswith("<details open><summary><code>ardiff.forward.q_sample</code>")


def test_long_sources_start_folded_and_several_objects_show_together():
    data = _formatted(ardiff.show(schedules.NoiseSchedule, forward.q_step))
    page = data["text/html"]
    assert page.count("<details") == 2
    assert page.startswith("<details><summary><code>ardiff.schedules.NoiseSchedule</code>")   # long: folded
    assert "<details open><summary><code>ardiff.forward.q_step</code>" in page                  # short: open
    assert "# ardiff.schedules.NoiseSchedule" in data["text/plain"] and "def q_step(" in data["text/plain"]
    assert "<details open>" in ardiff.show(schedules.NoiseSchedule, collapse_after=10_000)._repr_html_()


def test_docstring_false_leaves_out_the_docstring_and_lines_picks_lines():
    with_doc = repr(ardiff.show(forward.q_sample))
    without = repr(ardiff.show(forward.q_sample, docstring=False))
    doc = forward.q_sample.__doc__.strip().split("\n")[0]
    assert doc in with_doc and doc not in without and '"""' not in without
    assert without.count("\n") < with_doc.count("\n") and "return _q_sample(" in without
    first_two = repr(ardiff.show(forward.q_sample, lines=(1, 2)))
    assert first_two.count("\n") == 2 and "def q_sample(" in first_two


def test_a_function_that_is_only_a_docstring_keeps_valid_code(tmp_path, monkeypatch):
    (tmp_path / "tiny_mod.py").write_text('def f():\n    """Only a docstring."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    import tiny_mod
    assert repr(ardiff.show(tiny_mod.f, docstring=False)).endswith("def f():\n    ...")


def test_methods_properties_and_modules():
    linear = repr(ardiff.show(schedules.NoiseSchedule.linear))   # a classmethod, reached through the class
    assert linear.startswith("# ardiff.schedules.NoiseSchedule.linear  (ardiff/schedules.py:")
    assert "    @classmethod\n    def linear(" in linear
    assert repr(ardiff.show(schedules.NoiseSchedule.__dict__["linear"])) == linear
    with pytest.raises(ValueError, match="no Python source"):   # a dataclass's generated __init__
        ardiff.show(schedules.NoiseSchedule.__init__)
    assert repr(ardiff.show(forward)).startswith("# ardiff.forward  (ardiff/forward.py:1)")
    from ardiff.source import show
    assert repr(show(forward.q_sample)) == repr(ardiff.show(forward.q_sample))


@pytest.mark.parametrize("obj,error", [(len, TypeError), (3, TypeError), (int, ValueError), ([].append, TypeError)])
def test_objects_without_python_source_are_refused(obj, error):
    with pytest.raises(error, match="Python"):
        ardiff.show(obj)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="at least one object"):
        ardiff.show()
    with pytest.raises(ValueError, match="lines must be"):
        ardiff.show(forward.q_sample, lines=(3, 1))
    with pytest.raises(ValueError, match="collapse_after"):
        ardiff.show(forward.q_sample, collapse_after=-1)


def test_import_ardiff_does_not_import_ipython_or_pygments():
    code = "import sys, ardiff; print(sorted(m for m in ('IPython', 'pygments', 'ardiff.source') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
