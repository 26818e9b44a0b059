"""The tutorial as a website: the executed notebooks built into a static book, without running them again.

::

    python -m mpt_utils.notebooks            # the main job: executes the notebooks into outputs/notebooks/
    python -m mpt_utils.notebooks --book     # builds outputs/book/ from them (under a minute)
    python -m http.server -d outputs/book    # read it at http://localhost:8000

The builder is Sphinx with MyST-NB (``nb_execution_mode = "off"``: the saved outputs are the content) and the
Sphinx Book Theme. Everything the site loads is in ``book/``: MathJax comes from the ``sphinx-mathjax-offline``
package, no widget or font script is fetched, and every link is relative, so it reads the same from a web server,
from ``file://``, or on a machine without network.

The landing page (``index.html``) holds what MPT is, the pipeline figure, this run's results beside the paper's,
how to run the tutorial, and the measured figures; then one chapter per notebook, in order, each with a link that
opens the notebook on Colab.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from .runtime import REPO_ROOT, REPO_URL
from .session import RUN_RECORD, SESSION_RECORD, find_notebooks

#: The Colab badge of every notebook's first cell: an image on colab.research.google.com, which an offline site
#: cannot load. The book shows a text link to the same address instead.
BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\((?P<url>[^)]+)\)")

CONF = '''\
project = "MPT tutorial"
author = "MPT tutorial contributors"
extensions = ["myst_nb", "sphinx-mathjax-offline", "sphinx_togglebutton"]
exclude_patterns = ["_build"]
nb_execution_mode = "off"          # the executed notebooks' saved outputs are the content
nb_merge_streams = True            # a text progress bar's updates read as one line, as in JupyterLab
nb_ipywidgets_js = {}            # never load widget scripts from a CDN (the headless run saved no widgets)
myst_enable_extensions = ["dollarmath", "amsmath"]
html_theme = "sphinx_book_theme"
html_title = "MPT tutorial"
html_theme_options = {"use_download_button": True, "show_toc_level": 2}
html_context = {"default_mode": "light"}  # the theme's mode switch starts from a valid mode (no console error)
html_favicon = "_static/favicon.svg"  # a page without one makes the browser ask for /favicon.ico, which is not there
html_show_sourcelink = False
html_copy_source = False           # the chapters' notebooks are on GitHub and Colab; no second copy here
html_last_updated_fmt = None
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]
'''


#: The site's icon: its initials, drawn by the browser (no file to fetch from anywhere else).
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" '
           'fill="#3b6ea5"/><text x="16" y="21" font-size="12" text-anchor="middle" fill="white" '
           'font-family="sans-serif">MPT</text></svg>')


class BookError(RuntimeError):
    """The book cannot be built (no executed notebooks, or Sphinx failed): the message says what to do."""


#: Set-up cells shown folded in the book (a click opens them): Colab's install cell, the parameters cell and the
#: parameters papermill injected.
SETUP_TAGS = {"parameters", "injected-parameters"}


def chapter_notebook(executed: Path, target: Path, caption: str = "") -> None:
    """Copy an executed notebook into the book's sources: its Colab badge becomes a text link, its set-up cells are
    folded (MyST-NB's ``hide-input`` tag), and a line under its title names what its figures and tables come from
    (``caption``: profile, data, backbone)."""
    nb = json.loads(executed.read_text(encoding="utf-8"))
    if caption:
        nb["cells"].insert(1, {"cell_type": "markdown", "id": "book-caption", "metadata": {},
                               "source": f"*Every figure and table of this chapter: {caption}.*"})
    for cell in nb["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if cell["cell_type"] == "code" and (SETUP_TAGS & set(tags) or "google.colab" in source):
            tags.append("hide-input")
        if cell["cell_type"] == "markdown":
            cell["source"] = BADGE.sub(lambda m: f"[Open this notebook in Colab]({m['url']})", source)
    target.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")


def markdown_table(frame: pd.DataFrame) -> str:
    """A pandas table as a MyST (GitHub) markdown table, numbers with two decimals, empty cells for NaN."""
    frame = frame.reset_index()
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join("" if pd.isna(v) else f"{v:.2f}" if isinstance(v, float) else str(v) for v in row)
            + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def readme_section(title: str) -> str | None:
    """The text of the README's ``## title`` section (None when the README is not beside the package)."""
    readme = REPO_ROOT / "README.md"
    if not readme.is_file():
        return None
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme.read_text(encoding="utf-8"), re.M | re.S)
    return match.group(1).strip() if match else None


def landing_page(output_root: Path, chapters: list[str], record: dict) -> str:
    """The book's ``index.md``: what MPT is, the pipeline, this run's results beside the paper's, how to run it,
    the measured figures, and the chapters."""
    caption = record.get("caption", "")
    parts = [
        "# MPT: Motion Prompt Tuning for Micro-Expression Recognition",
        "A step-by-step tutorial that teaches and reproduces **MPT** (2025). Micro-expressions are facial movements of "
        "a fraction of a second and a pixel or two; the datasets hold a few hundred clips. MPT adapts a frozen, "
        "pretrained Vision Transformer to them with *motion prompts* (rank pooling, Eulerian magnification, temporal "
        "Gaussian tokenization) and *group adapters*, training about 5.5 M of its 91 M parameters.",
        (f"This book shows the notebooks as they ran: **{caption}**"
         + (f", executed on {record['finished']}" if record.get("finished") else "") + "."
         if caption else "This book shows the notebooks as they ran; each one's first output names its profile, data "
         "and backbone."),
    ]
    pipeline = output_root / "00_overview" / "mpt_pipeline.png"
    if pipeline.is_file():
        parts.append("```{figure} _static/mpt_pipeline.png\n:alt: the MPT pipeline\n\n"
                     f"The MPT pipeline (notebook 00). {caption}\n```")
    results = output_root / "06_loso_training" / "results_table.csv"
    parts.append("## Results beside the paper's")
    if results.is_file():
        parts.append("Pooled leave-one-subject-out scores of this run (notebook 06), the paper's MPT row and chance. "
                     "Synthetic data and the small backbone of the `quick` and `ci` profiles are not the paper's "
                     "experiment: notebook 06 explains what the numbers can be compared with.\n\n"
                     + markdown_table(pd.read_csv(results).set_index("run")) + f"\n\n*{caption}*")
        ablation = output_root / "06_loso_training" / "ablation_table.csv"
        if ablation.is_file():
            parts.append("MPT's parts on the same folds, beside the paper's SMIC figures (notebook 06):\n\n"
                         + markdown_table(pd.read_csv(ablation).set_index("run")) + f"\n\n*{caption}*")
    else:
        parts.append("Notebook 06 has not run in this output folder: its results table is missing.")
    parts.append(
        "## How to run it\n\n"
        "- **Locally** (Python 3.11+, CPU is enough): "
        "`python3 -m venv .venv && .venv/bin/pip install -e \".[dev]\" -c requirements/lock.txt && "
        ".venv/bin/python -m mpt_utils.notebooks`, "
        "then `python -m mpt_utils.notebooks --book` builds this book in `outputs/book/`.\n"
        f"- **On Colab**: every chapter starts with a link that opens its notebook on Colab ({REPO_URL}).\n"
        "- **On a GPU, with a real dataset**: `python -m mpt_utils.notebooks --profile paper --data-root /data/CASME2 "
        "--weights vit.safetensors`, or the paper's tables with `python -m mpt_utils.train --profile paper "
        "--ablation all` (README).")
    if record.get("seconds"):
        rows = "\n".join(f"| {name} | {seconds:.0f} |" for name, seconds in record["seconds"].items())
        parts.append(f"### This run\n\n| notebook | seconds |\n|---|---|\n{rows}\n\n*{caption}*")
    measured = readme_section("Measured figures")
    if measured:
        parts.append("## Measured figures\n\n" + measured)
    parts.append("```{toctree}\n:maxdepth: 1\n:caption: Chapters\n\n" + "\n".join(chapters) + "\n```")
    return "\n\n".join(parts) + "\n"


def build_book(output_root: str | Path) -> Path:
    """Build ``<output_root>/book/`` from the executed notebooks in ``<output_root>/notebooks/``; return the book's
    folder (its ``index.html`` is the landing page). Nothing is executed. The new book replaces an old one only
    once it is complete."""
    from sphinx.cmd.build import build_main

    output_root = Path(output_root)
    executed = output_root / "notebooks"
    try:
        notebooks = find_notebooks(executed)
    except FileNotFoundError:
        raise BookError(f"no executed notebooks in {executed}: run `python -m mpt_utils.notebooks` (with the same "
                        "--output) first, then build the book") from None
    record_file = executed / RUN_RECORD
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    captions = {p.stem: json.loads(f.read_text())["caption"] for p in notebooks
                if (f := output_root / p.stem / SESSION_RECORD).is_file()}
    record.setdefault("caption", list(captions.values())[-1] if captions else "")  # the last notebook's run
    book = output_root / "book"
    with tempfile.TemporaryDirectory(prefix=".book-", dir=output_root) as tmp:
        source, html = Path(tmp) / "source", Path(tmp) / "html"
        (source / "_static").mkdir(parents=True)
        for path in notebooks:
            chapter_notebook(path, source / path.name, captions.get(path.stem, ""))
        pipeline = output_root / "00_overview" / "mpt_pipeline.png"
        if pipeline.is_file():
            shutil.copy(pipeline, source / "_static" / pipeline.name)
        (source / "_static" / "favicon.svg").write_text(FAVICON, encoding="utf-8")
        (source / "index.md").write_text(landing_page(output_root, [p.stem for p in notebooks], record),
                                         encoding="utf-8")
        (source / "conf.py").write_text(CONF, encoding="utf-8")
        args = ["-b", "html", "-W", "--keep-going", "-q", str(source), str(html)]  # a warning fails the build
        if build_main(args) != 0:
            raise BookError(f"Sphinx could not build the book from {executed} (its messages are above)")
        shutil.rmtree(html / ".doctrees", ignore_errors=True)
        (html / ".buildinfo").unlink(missing_ok=True)
        old = Path(tmp) / "old"
        if book.exists():
            book.rename(old)
        html.rename(book)
    return book
