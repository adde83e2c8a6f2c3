"""MyST markdown to the plain (CommonMark + $math$) markdown that Colab and Jupyter render.

The book's lessons are written for myst-nb: glued numbers (``{glue:text}`name:.1f```), citations
(``{cite}`key```), admonition fences, cross-references and label targets. :func:`to_markdown` turns one
markdown cell into text that reads the same without Sphinx: glue roles become the values stored in the
lesson's outputs (formatted as myst-nb formats them), citations become "(Author Year)" links, admonitions a
bold title over a blockquote, references plain text, ``{math}`` roles ``$x$``. Syntax it does not know
raises ``ValueError`` rather than reaching a reader as raw MyST.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Context", "to_markdown", "glue_data", "read_bibliography", "find_labels", "find_equations", "colab_url"]

FIGURE_NOTE = "*(Figure: it appears when you run the cell that makes it.)*"
ADMONITIONS = {"admonition", "note", "tip", "warning", "important", "hint", "caution", "attention", "danger",
               "error", "seealso", "dropdown", "margin", "sidebar", "topic", "exercise", "solution"}
TITLED = {"admonition", "dropdown", "margin", "sidebar", "topic"}   # their argument is the title
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,}|:{3,})(.*)$")
_LABEL = re.compile(r"^\s*\(([^()\s]+)\)=\s*$")
_ROLE = re.compile(r"\{([A-Za-z][\w:+-]*)\}`([^`]*)`")
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
_TARGET = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.S)


@dataclass
class Context:
    """What converting one lesson needs.

    Args:
        lesson: the lesson's path relative to the repository root (``lessons/01_x.ipynb``), named in errors
            and used to resolve relative links.
        glue: ``{name: {mime: text}}`` stored by the lesson's ``glue`` calls (see :func:`glue_data`).
        bib: ``{key: (authors, year, url)}`` (see :func:`read_bibliography`).
        labels: ``{label: text}`` of the ``(label)=`` targets (see :func:`find_labels`).
        repository: the GitHub URL links to other files point into.
        branch: the branch those links use.
    """
    lesson: str
    glue: dict = field(default_factory=dict)
    bib: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    repository: str = "https://github.com/ardiff-book/ardiff"
    branch: str = "main"
    equations: dict = field(default_factory=dict)   # math labels, numbered in order of appearance

    def fail(self, what: str):
        raise ValueError(f"{self.lesson}: {what}")


def colab_url(path: str, repository: str, branch: str = "main") -> str:
    """The URL that opens ``path`` (a notebook, relative to the repository root) of ``repository`` in Colab."""
    m = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)/?", repository)
    if not m:
        raise ValueError(f"repository must be https://github.com/OWNER/NAME, got {repository!r}")
    return f"https://colab.research.google.com/github/{m[1]}/blob/{branch}/{path}"


def glue_data(nb) -> dict:
    """``{name: {mime: text}}`` of every glued value in a notebook's stored outputs, read as myst-nb reads
    them: display outputs with ``metadata.scrapbook.name``, the ``mime_prefix`` taken off each mime type."""
    out = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            scrap = output.get("metadata", {}).get("scrapbook")
            if scrap:
                cut = len(scrap.get("mime_prefix", ""))
                out[scrap["name"]] = {k[cut:]: v for k, v in output.get("data", {}).items()}
    return out


def read_bibliography(path) -> dict:
    """``{key: (authors, year, url)}`` from a BibTeX file: "Ho", "Ho and Jain", "Ho et al." (3+ authors);
    the url field, else ``https://doi.org/DOI``, else ''."""
    from pybtex.database import parse_file
    from pybtex.richtext import Text

    def plain(latex: str) -> str:
        return Text.from_latex(latex).render_as("text")

    out = {}
    for key, entry in parse_file(str(path)).entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        last = [plain(" ".join(p.prelast_names + p.last_names)) for p in people]
        authors = (last[0] if len(last) == 1 else " and ".join(last) if len(last) == 2
                   else f"{last[0]} et al." if last else plain(entry.fields.get("title", key)))
        doi = entry.fields.get("doi")
        url = entry.fields.get("url") or (f"https://doi.org/{doi}" if doi else "")
        out[key] = (authors, entry.fields.get("year", "n.d."), url)
    return out


def find_labels(text: str) -> dict:
    """``{label: heading text}`` for each ``(label)=`` line of MyST text followed by a heading (or, failing
    that, by any line: its text)."""
    out = {}
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = _LABEL.match(line)
        nxt = next((l for l in lines[i + 1:] if l.strip()), "")
        if m:
            out[m[1]] = re.sub(r"^#+\s*", "", nxt.strip())
    return out


def find_equations(text: str, start: int = 1) -> dict:
    """``{label: number}`` of the labelled equations of MyST text (``{math}`` blocks with ``:label:`` and
    ``$$ ... $$ (label)``), numbered from ``start`` in order of appearance, as Sphinx numbers them."""
    found = re.findall(r"^\s*(?:`{3,}|:{3,})\{math\}[^\n]*\n(?:\s*:[\w-]+:.*\n)*?\s*:label:\s*(\S+)"
                       r"|\$\$\s*\(([^()\s]+)\)\s*$", text, re.M)
    return {a or b: start + n for n, (a, b) in enumerate(found)}


def to_markdown(text: str, ctx: Context) -> str:
    """One MyST markdown cell as plain markdown (see the module docstring); raises ``ValueError`` naming the
    lesson for a missing glue key, citation or label, and for a role or directive it does not know."""
    lines, out, i, blank_needed = text.split("\n"), [], 0, False
    para: list[str] = []

    def flush():
        if para:
            out.extend(_inline("\n".join(para), ctx).split("\n"))
            para.clear()

    while i < len(lines):
        line, m = lines[i], _FENCE.match(lines[i])
        if blank_needed and line.strip():
            para.append("")
        blank_needed = False
        if _LABEL.match(line) or re.match(r"^%( |$)", line):     # a target or a MyST comment: no text
            i += 1
            continue
        if not m:
            para.append(line)
            i += 1
            continue
        indent, fence, rest = m.groups()
        end = next((j for j in range(i + 1, len(lines))
                    if re.fullmatch(re.escape(fence[0]) + "{%d,}" % len(fence), lines[j].strip())), len(lines))
        directive = re.match(r"\{([^}]+)\}\s*(.*)$", rest.strip())
        flush()
        if directive is None or fence[0] == "~":                  # a plain code block: kept as written
            out.extend(lines[i:end + 1])
        else:
            body = [l[len(indent):] if l.startswith(indent) else l.lstrip() for l in lines[i + 1:end]]
            block = _directive(directive[1], directive[2].strip(), body, ctx)
            if out and out[-1].strip():
                out.append("")
            out.extend(indent + l if l else l for l in block.split("\n"))
            blank_needed = True
        i = end + 1
    flush()
    return "\n".join(out)


def _options(body: list[str]) -> tuple[dict, list[str]]:
    """A directive's ``:key: value`` options (or ``---`` YAML block) and the rest of its body."""
    opts, k = {}, 0
    if body and body[0].strip() == "---":
        close = next(j for j in range(1, len(body)) if body[j].strip() == "---")
        for line in body[1:close]:
            key, _, value = line.partition(":")
            opts[key.strip()] = value.strip()
        k = close + 1
    while k < len(body) and re.match(r"^\s*:[\w-]+:", body[k]):
        key, _, value = body[k].strip()[1:].partition(":")
        opts[key] = value.strip()
        k += 1
    body = body[k:]
    while body and not body[0].strip():
        body = body[1:]
    while body and not body[-1].strip():
        body = body[:-1]
    return opts, body


def _directive(name: str, arg: str, body: list[str], ctx: Context) -> str:
    opts, body = _options(body)
    if name in ADMONITIONS:
        if name in TITLED:
            title = arg or name.capitalize()
        else:
            title = {"seealso": "See also"}.get(name, name.capitalize())
            if name == "exercise" and arg:
                title += f": {arg}"
            elif arg:                                        # ```{note} text: the text opens the body
                body = [arg] + body
        inner = to_markdown("\n".join(body), ctx).split("\n")
        quoted = ["> " + l if l.strip() else ">" for l in inner]
        return "\n".join([f"**{_inline(title, ctx)}**", ""] + quoted)
    if name == "math":
        tag = f" \\tag{{{ctx.equations[opts['label']]}}}" if opts.get("label") in ctx.equations else ""
        parts = re.split(r"\n\s*\n", "\n".join(body).strip())
        return "\n\n".join(f"$$\n{p}{tag if i == len(parts) - 1 else ''}\n$$" for i, p in enumerate(parts))
    if name in ("code-block", "code", "sourcecode", "code-cell"):
        return "\n".join([f"```{arg}"] + body + ["```"])
    if name in ("figure", "image"):
        caption = to_markdown("\n".join(body), ctx).strip()
        image = f"![{opts.get('alt', caption)}]({_resolve(arg, ctx, image=True)})"
        return image + (f"\n\n*{caption}*" if caption else "")
    if name.startswith("glue"):
        kind = name.partition(":")[2] or "any"
        if kind in ("any", "figure", "md", "math"):
            value = _glue(kind, arg, ctx) if kind in ("md", "math") else _glue_any(arg, ctx)
            if kind == "math":
                value = f"$$\n{value.strip().strip('$')}\n$$"
            caption = to_markdown("\n".join(body), ctx).strip()
            return value + (f"\n\n*{caption}*" if caption else "")
    ctx.fail(f"the MyST directive {{{name}}} has no Colab form; add it to ardiff.mystmd")


def _inline(text: str, ctx: Context) -> str:
    """Roles and links of running text."""
    text = re.sub(r"\$\$\s*\(([^()\s]+)\)[ \t]*$",
                  lambda m: f"\\tag{{{ctx.equations.get(m[1], m[1])}}} $$", text, flags=re.M)
    text = _ROLE.sub(lambda m: _role(m[1], m[2], ctx, before=text[max(0, m.start() - 80):m.start()]), text)
    return _LINK.sub(lambda m: _link(m, ctx), text)


def _split_target(content: str) -> tuple[str | None, str]:
    m = _TARGET.match(content.strip())
    return (m[1], m[2].strip()) if m else (None, content.strip())


def _role(name: str, content: str, ctx: Context, before: str = "") -> str:
    if name in ("glue", "glue:", "glue:any"):
        return _glue_any(content, ctx)
    if name.startswith("glue:"):
        return _glue(name[5:], content, ctx)
    if name in ("cite", "cite:p", "cite:ps", "cite:t", "cite:ts"):
        return _cite(content, name.startswith("cite:t"), ctx, before.rpartition("\n\n")[2])
    if name == "math":
        return f"${content}$"
    text, target = _split_target(content)
    if name in ("doc", "download"):
        return f"[{text or posixpath.basename(target)}]({_resolve(target, ctx, doc=name == 'doc')})"
    if name == "term":
        return text or target
    if name in ("ref", "numref"):
        if text:   # the link text, without numref's number placeholders
            return re.sub(r"\s*(%s|\{number\}|\{name\})", "", text).strip()
        if target not in ctx.labels:
            ctx.fail(f"{{{name}}}`{content}`: no target ({target})= in the lessons or the book")
        return ctx.labels[target]
    if name == "eq":
        if target not in ctx.equations:
            ctx.fail(f"{{eq}}`{content}`: no labelled equation {target!r}")
        return f"({ctx.equations[target]})"
    ctx.fail(f"the MyST role {{{name}}} has no Colab form; add it to ardiff.mystmd")


def _glue_value(key: str, ctx: Context) -> dict:
    if "::" in key:
        ctx.fail(f"glue key {key!r} reads another document; glue it in this lesson instead")
    if key not in ctx.glue:
        ctx.fail(f"glue key {key!r} is not in the lesson's stored outputs (run the lesson: python -m ardiff "
                 "run-lessons)")
    return ctx.glue[key]


def _glue(kind: str, content: str, ctx: Context) -> str:
    """``{glue:text}`key:fmt```, ``{glue:md}`key``` or ``{glue:math}`key```, as myst-nb's roles render them."""
    key, _, fmt = content.rpartition(":") if ":" in content else (content, "", "")
    data = _glue_value(key, ctx)
    mime = {"text": "text/plain", "md": "text/markdown", "math": "text/latex"}.get(kind)
    if mime is None:
        ctx.fail(f"the glue role {{glue:{kind}}} has no Colab form")
    if mime not in data:
        ctx.fail(f"glue key {key!r} has no {mime} value for {{glue:{kind}}}")
    if kind != "text":
        return data[mime].strip()
    from myst_nb.core.variables import format_plain_text   # the book's own formatting, so the two agree
    return format_plain_text(data[mime], fmt or "s")


def _glue_any(key: str, ctx: Context) -> str:
    """``{glue}`key```: markdown or LaTeX when stored, a note for a figure, else the text/plain as stored."""
    data = _glue_value(key, ctx)
    if "text/markdown" in data:
        return data["text/markdown"].strip()
    if "text/latex" in data:
        return data["text/latex"].strip()
    if any(k.startswith("image/") for k in data):
        return FIGURE_NOTE
    return data.get("text/plain", "")


def _cite(content: str, textual: bool, ctx: Context, before: str = "") -> str:
    """"(Author Year)" links, "Author (Year)" when ``textual``; a bare link when the prose just ``before``
    already names the work (its first author and year), as in "DDPM (Ho et al. 2020 {cite}`ho2020ddpm`)"."""
    keys = [k.strip() for k in content.split(",")]
    if len(keys) == 1 and not textual and keys[0] in ctx.bib:
        authors, year, url = ctx.bib[keys[0]]
        if url and year in before and re.split(r" et al\.| and ", authors)[0] in before:
            return f"[↗]({url})"
    parts = []
    for key in keys:
        if key not in ctx.bib:
            ctx.fail(f"citation {key!r} is not in book/references.bib")
        authors, year, url = ctx.bib[key]
        words = f"{authors} ({year})" if textual else f"{authors} {year}"
        parts.append(f"[{words}]({url})" if url else words)
    if textual:
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return "(" + "; ".join(parts) + ")"


def _link(m: re.Match, ctx: Context) -> str:
    bang, text, target = m.groups()
    if target.startswith("#"):
        return text or ctx.labels.get(target[1:], target[1:])
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
        return m[0]
    return f"{bang}[{text}]({_resolve(target, ctx, image=bool(bang))})"


def _resolve(target: str, ctx: Context, image: bool = False, doc: bool = False) -> str:
    """A path relative to the lesson as a URL: a lesson opens its Colab edition; images come raw from
    GitHub; other files are GitHub pages."""
    path, _, anchor = target.partition("#")
    path = posixpath.normpath(posixpath.join(posixpath.dirname(ctx.lesson), path))
    if doc and not Path(path).suffix:
        path += ".ipynb" if re.match(r"lessons/\d\d_", path) else ".md"
    if re.fullmatch(r"lessons/\d\d_[\w-]+\.ipynb", path):
        return colab_url(f"colab/{posixpath.basename(path)}", ctx.repository, ctx.branch)
    base = ctx.repository.replace("https://github.com/", "https://raw.githubusercontent.com/") if image else \
        f"{ctx.repository}/blob"
    return f"{base}/{ctx.branch}/{path}" + (f"#{anchor}" if anchor else "")
