"""Run the tutorial's notebooks headlessly, in order, with papermill: the project's main job.

::

    python -m mpt_utils.notebooks                   # every notebook, quick profile, offline
    python -m mpt_utils.notebooks --only 03 05      # some of them
    python -m mpt_utils.notebooks --profile paper --data-root /data/CASME2 --weights vit.safetensors

Executed notebooks go to ``<output>/notebooks/``; each notebook writes its figures and runs to
``<output>/<notebook name>/``. On a failure the runner stops, prints the failing cell's traceback
and the path of the partly executed notebook, and exits with status 1.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

from .book import BookError, build_book
from .data import CLASS_SCHEMES, DatasetError
from .io import atomic_write_json, check_output_folder
from .model import PretrainedWeightsError
from .profiles import PROFILES
from .run import RunError, resolve_run
from .runtime import HEADLESS_ENV, REPO_ROOT, work_dir
from .session import RUN_RECORD, find_notebooks


def notebook_parameters(args: argparse.Namespace, output_root: Path) -> dict:
    """The papermill parameters every notebook declares in its ``parameters`` cell."""
    return {
        "profile": args.profile,
        "output_root": str(output_root),
        "data_root": str(Path(args.data_root).resolve()) if args.data_root else None,
        "dataset": args.dataset,
        "scheme": args.scheme,
        "weights": str(Path(args.weights).resolve()) if args.weights else None,
        "pretrained": False if args.no_pretrained else None,
        "interactive": False,
    }


@functools.cache
def kernel_manager_class():
    """The Jupyter kernel manager the runner (and the notebook tests) start kernels with: local IPC sockets instead
    of TCP where the platform has them, so a kernel no longer prints "[IPKernelApp] WARNING | Kernel is running over
    TCP without encryption" on every start (nothing leaves the machine either way)."""
    from jupyter_client.manager import AsyncKernelManager

    if sys.platform == "win32":  # no Unix sockets: TCP on loopback, as Jupyter does
        return AsyncKernelManager
    from traitlets import Unicode

    class IPCKernelManager(AsyncKernelManager):
        transport = Unicode("ipc")

    return IPCKernelManager


def run_notebook(path: Path, output: Path, parameters: dict, timeout: int | None) -> float:
    """Execute one notebook with papermill; return its wall time in seconds."""
    import papermill as pm

    start = time.perf_counter()
    pm.execute_notebook(
        str(path),
        str(output),
        parameters=parameters,
        cwd=str(path.parent),
        kernel_name="python3",
        progress_bar={"desc": path.stem, "leave": False},
        execution_timeout=timeout,
        kernel_manager_class=kernel_manager_class(),
    )
    return time.perf_counter() - start


def failing_cell(executed: Path) -> str | None:
    """``[N] first line of source`` of the cell that raised, read from the partly executed notebook."""
    import nbformat

    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:
        return None
    for cell in nb.cells:
        if cell.cell_type == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            return f"[{cell.get('execution_count')}] {first}"
    return None


def print_summary(rows: list[tuple[str, str, float | None]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{'notebook'.ljust(width)}  status    seconds")
    for name, status, seconds in rows:
        secs = f"{seconds:7.1f}" if seconds is not None else "      -"
        print(f"{name.ljust(width)}  {status:<8}  {secs}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mpt_utils.notebooks",
        description="Execute the MPT tutorial notebooks in order with papermill.",
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                        help="ci: tiny (tests); quick: offline CPU, synthetic data (default); "
                        "paper: ViT-B/16 pretrained, 224 px, full LOSO, GPU")
    parser.add_argument("--only", nargs="+", metavar="NN",
                        help="run only these notebooks, by number (03) or name (03_eulerian_magnification)")
    parser.add_argument("--output", type=Path, default=None,
                        help="output folder (default: outputs/); executed notebooks go to OUTPUT/notebooks/")
    parser.add_argument("--data-root", default=None,
                        help="a real dataset's folder (default: $MPT_DATA_ROOT, else the synthetic set)")
    parser.add_argument("--dataset", default=None, choices=["casme2", "samm", "smic", "synthetic"],
                        help="which dataset --data-root holds (default: recognised from its layout, else synthetic)")
    parser.add_argument("--scheme", default=None, choices=sorted(CLASS_SCHEMES),
                        help="class scheme (default: the dataset's own)")
    parser.add_argument("--weights", default=None,
                        help="a local backbone checkpoint (.safetensors/.pth/.npz), loaded through timm")
    parser.add_argument("--no-pretrained", action="store_true",
                        help="random backbone weights (with --profile paper: a timing run, labelled as such)")
    parser.add_argument("--notebooks-dir", type=Path, default=REPO_ROOT / "notebooks",
                        help="where the notebooks are (default: the repository's notebooks/)")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    parser.add_argument("--book", action="store_true",
                        help="after running the notebooks, build the website OUTPUT/book/ from OUTPUT/notebooks/ "
                        "(read it with: python -m http.server -d OUTPUT/book)")
    parser.add_argument("--book-only", action="store_true",
                        help="build OUTPUT/book/ from the notebooks already executed in OUTPUT/notebooks/, "
                        "running none (under a minute)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the notebooks; return the exit status: 0 done, 1 a notebook failed, 2 bad input (nothing written),
    130 interrupted (Ctrl-C: rerunning the same command runs them again; the LOSO runs inside resume)."""
    args = build_parser().parse_args(argv)
    try:
        return _main(args)
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to run the notebooks again (their LOSO runs resume where they "
              "stopped)", file=sys.stderr)
        return 130


def _main(args: argparse.Namespace) -> int:
    output_root = (args.output or work_dir() / "outputs").resolve()
    if args.book_only:
        return make_book(output_root)
    try:
        check_output_folder(output_root, "--output")
        notebooks = find_notebooks(args.notebooks_dir, args.only)
        # the notebooks' own run, resolved once here first: bad input stops before any notebook starts
        run = resolve_run(args.profile, dataset=args.dataset, data_root=args.data_root, scheme=args.scheme,
                    weights=args.weights, pretrained=False if args.no_pretrained else None, caller="notebooks")
    except (FileNotFoundError, ValueError, RunError, DatasetError, PretrainedWeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # OutputFolderError and ConfigError are ValueErrors
        return 2
    os.environ[HEADLESS_ENV] = "1"  # the kernels inherit it: plain-text progress bars, no widgets
    executed = output_root / "notebooks"
    executed.mkdir(parents=True, exist_ok=True)
    parameters = notebook_parameters(args, output_root)
    print(f"Running {len(notebooks)} notebook(s), profile {args.profile}, outputs in {output_root}")
    rows: list[tuple[str, str, float | None]] = []
    for i, path in enumerate(notebooks):
        target = executed / path.name
        try:
            seconds = run_notebook(path, target, parameters, args.timeout)
        except Exception as exc:  # papermill's PapermillExecutionError carries the cell's traceback
            rows.append((path.stem, "FAILED", None))
            rows.extend((p.stem, "not run", None) for p in notebooks[i + 1 :])
            print_summary(rows)
            cell = failing_cell(target)
            print(f"\n{path.name} failed" + (f" in cell {cell}" if cell else "") + ":", file=sys.stderr)
            if hasattr(exc, "traceback"):
                print("\n".join(exc.traceback), file=sys.stderr)
            else:
                print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            print(f"\nThe partly executed notebook is {target}", file=sys.stderr)
            return 1
        rows.append((path.stem, "ok", seconds))
    print_summary(rows)
    record = {"profile": args.profile, "caption": run.caption, "finished": time.strftime("%Y-%m-%d %H:%M"),
              "seconds": {name: seconds for name, _, seconds in rows}}
    if not args.only:  # a partial run keeps the full run's record
        atomic_write_json(executed / RUN_RECORD, record)
    print(f"\nExecuted notebooks: {executed}")
    return make_book(output_root) if args.book else 0


def make_book(output_root: Path) -> int:
    """Build the book from ``output_root``'s executed notebooks; say where it is and how to read it."""

    start = time.perf_counter()
    try:
        book = build_book(output_root)
    except BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Book built in {time.perf_counter() - start:.0f} s: {book / 'index.html'}\n"
          f"Read it with: python -m http.server -d {book}  (then open http://localhost:8000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
