"""``python -m mpt_utils.train``: LOSO runs and the paper's tables from the command line.

::

    python -m mpt_utils.train --dataset casme2 --root /data/CASME2 --profile paper --out runs/casme2
    python -m mpt_utils.train --dataset smic --root /data/SMIC --profile paper --out runs/smic --ablation all
    python -m mpt_utils.train --dataset megc2019 --root-casme2 /data/CASME2 --root-samm /data/SAMM \\
        --root-smic /data/SMIC --profile paper --out runs/megc2019
    python -m mpt_utils.train --profile quick --out runs/quick          # synthetic data, CPU
    python -m mpt_utils.train --dataset smic --root /data/SMIC --profile paper --out runs/smic --ablation all \
        --executor slurm --slurm-partition gpu --slurm-gpus-per-task 1      # every fold a SLURM array task
    python -m mpt_utils.train collect --out runs/smic                   # the tables of whatever is done

Each run is resumable: run the same command again after an interruption. Results: ``results.json``,
``predictions.csv`` and ``summary.md`` per run, and for the main run or each ablation a CSV and a
Markdown table with the paper's figures beside ours. Bad input ends with a message and exit status 2.

This module only parses: :func:`mpt_utils.run.resolve_run` builds the run (as the notebooks do),
:func:`mpt_utils.experiments.run_experiment` makes its backbone
(:meth:`~mpt_utils.run.Run.prepare_backbone`), trains and tabulates.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path
from typing import Any

from .config import COLORS, PRECISIONS, ConfigError
from .data import CLASS_SCHEMES, DatasetError, synthetic_params
from .executors import (
    Executor,
    ExecutorError,
    InProcess,
    LocalWorkers,
    Slurm,
    SlurmOptions,
    parse_devices,
    parse_extra,
    parse_time,
)
from .experiments import IncompleteError, collect, run_experiment, table_caveat
from .io import OutputFolderError, check_output_folder
from .model import PretrainedWeightsError
from .motion import DYNAMIC_SCALINGS
from .profiles import PROFILES
from .run import COMPOSITE_SOURCES, DATASETS, RunError, resolve_run
from .runtime import DATA_ROOT_ENV, select_device
from .sweep import AMPLITUDES, SEEDS, run_amplitude_sweep, sweep_verdict
from .train import ABLATIONS, ConfigMismatchError, NoFinishedFoldsError

#: The run settings this command overrides: fields of :class:`~mpt_utils.config.TrainConfig`, each the option of the
#: same name (``max_folds``: ``--max-folds``). Passed on from this one list; an option left out means the profile's.
OVERRIDES = ("variant", "epochs", "max_folds", "alpha", "fs", "lambda_c", "skip_finest", "color", "chroma_attenuation",
             "dynamic_scaling", "device", "precision", "seed")


def _overrides(args: argparse.Namespace, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """The :data:`OVERRIDES` as given on the command line (None where an option was not given)."""
    return {name: getattr(args, name) for name in OVERRIDES if name not in leave_out}


def _sampling_rate(text: str) -> float | str:
    """``--fs``: a number of Hz, or ``per_clip``."""
    if text == "per_clip":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of Hz or per_clip, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mpt_utils.train", description=__doc__.split("::")[0].strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    p.add_argument("--dataset", default=None, choices=DATASETS,
                   help="default: recognised from --root's layout, else the synthetic set. To generate a synthetic "
                   "set into a folder of your choice, pass --dataset synthetic --root FOLDER (an empty or new "
                   "folder; a synthetic set already there is used as it is)")
    p.add_argument("--root", default=None, help="the dataset's folder (default: $MPT_DATA_ROOT). For synthetic data "
                   "(--dataset synthetic) the folder to generate the set in, or a set generated before; without "
                   "--root and --dataset: data/synthetic-<profile>")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="leave out (and report) coding-sheet rows whose frames are missing or do not match, "
                   "instead of stopping")
    p.add_argument("--fill-missing-frames", action="store_true",
                   help="read a missing onset, apex or offset frame from its neighbours (reported) instead of "
                   "stopping")
    for name in COMPOSITE_SOURCES:
        p.add_argument(f"--root-{name}", default=None, help=f"{name}'s folder for --dataset megc2019")
    p.add_argument("--scheme", "--classes", dest="scheme", default=None, choices=sorted(CLASS_SCHEMES),
                   help="class scheme (default: the dataset's own; megc2019 for the composite)")
    p.add_argument("--out", type=Path, required=True, help="results folder (resumable)")
    p.add_argument("--ablation", nargs="+", choices=sorted(ABLATIONS) + ["all", "amplitude"], default=None,
                   help="run the paper's ablation tables instead of one run; amplitude: the amplitude sweep on "
                   "synthetic sets it generates (alone; not part of all)")
    p.add_argument("--amplitudes", nargs="+", type=float, default=None,
                   help=f"amplitude sweep: expression amplitudes in pixels at 224 px (default {list(AMPLITUDES)})")
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help=f"amplitude sweep: one generated set and training seed each (default {list(SEEDS)})")
    p.add_argument("--variant", default=None,
                   help="model variant of a single run: one of MPT's (mpt_utils.model.VARIANTS) or MA2MI's two-branch "
                        "network, two_branch or two_branch_ma2mi")
    p.add_argument("--epochs", type=int, default=None, help="epochs per fold (default: the profile's)")
    p.add_argument("--max-folds", type=int, default=None, help="run only the first N folds")
    p.add_argument("--alpha", type=float, default=None, help="magnification factor (default: the profile's)")
    p.add_argument("--fs", type=_sampling_rate, default=None, help="magnification sampling rate in Hz, or per_clip")
    p.add_argument("--lambda-c", type=float, default=None,
                   help="magnification: spatial cut-off in pixels that lowers alpha on fine levels (default: off)")
    p.add_argument("--skip-finest", action=argparse.BooleanOptionalAction, default=None,
                   help="magnification: leave the finest pyramid level unamplified (default: the profile's, off)")
    p.add_argument("--color", choices=list(COLORS), default=None,
                   help="magnification colour space (default: rgb); yiq allows --chroma-attenuation")
    p.add_argument("--chroma-attenuation", type=float, default=None,
                   help="with --color yiq: chroma amplified this many times less than luma (default: 1)")
    p.add_argument("--dynamic-scaling", choices=list(DYNAMIC_SCALINGS), default=None,
                   help="how a dynamic image becomes the model's input (default: minmax; notebook 02)")
    p.add_argument("--weights", default=None, help="local checkpoint of the profile's backbone")
    p.add_argument("--no-pretrained", action="store_true",
                   help="random backbone (with --profile paper: a timing run, labelled as such everywhere)")
    p.add_argument("--device", default=None, help="auto, cuda, mps or cpu (default: the profile's)")
    p.add_argument("--precision", default=None, choices=list(PRECISIONS))
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--cache-dir", default=None, help="preprocessed-clip cache (default: data/cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("action", nargs="?", choices=["collect"],
                   help="collect: write the tables of --out from the folds done so far, and list what is missing")
    p.add_argument("--collect", action="store_true", help="the same as the collect action")
    g = p.add_argument_group("many folds, many GPUs (every fold a task; see the README)")
    g.add_argument("--executor", choices=["inprocess", "local", "slurm"], default="inprocess",
                   help="inprocess: one fold after another, here (default); local: one worker per --gpus entry; "
                   "slurm: a SLURM job array")
    g.add_argument("--gpus", default=None, help="local executor: the GPUs, one worker each (0,1,2,3), or cpu:N")
    g.add_argument("--slurm-partition", default=None, help="default: the cluster's default partition")
    g.add_argument("--slurm-gpus-per-task", type=int, default=None, help="default: no GPU")
    g.add_argument("--slurm-time", default="120", help="time limit per task: minutes or HH:MM:SS (default 120); "
                   "a task that reaches it is requeued and redoes its fold")
    g.add_argument("--slurm-array-parallelism", type=int, default=None, help="at most this many tasks at once")
    g.add_argument("--slurm-cpus-per-task", type=int, default=None)
    g.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other sbatch option, e.g. qos=high or constraint=a100 (repeatable)")
    g.add_argument("--wait", action="store_true", help="slurm: block with a progress bar and write the tables at "
                   "the end (otherwise: print the job id and how to collect)")
    return p


def choose_executor(args: argparse.Namespace) -> Executor:
    """The executor the options name (``--gpus`` alone means local workers), checked before any data work:
    :class:`ExecutorError` for a device that is not there, a bad SLURM option or an unreachable cluster."""
    name = "local" if args.gpus and args.executor == "inprocess" else args.executor
    if name == "local":
        if not args.gpus:
            raise ExecutorError("--executor local needs --gpus: the GPUs to use (0,1,2,3) or cpu:N CPU workers")
        return LocalWorkers(tuple(parse_devices(args.gpus)))
    if args.gpus:
        raise ExecutorError(f"--gpus belongs to --executor local, not --executor {name}")
    if name == "inprocess":
        return InProcess()
    return Slurm(SlurmOptions(partition=args.slurm_partition, gpus_per_task=args.slurm_gpus_per_task,
                              time_min=parse_time(args.slurm_time), array_parallelism=args.slurm_array_parallelism,
                              cpus_per_task=args.slurm_cpus_per_task, extra=parse_extra(args.slurm_option)),
                 wait=args.wait)


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit status: 0 done, 1 a failure while working (a full disk, folds left
    unfinished), 2 bad input (nothing written), 130 interrupted (rerunning the same command resumes)."""
    args = build_parser().parse_args(argv)
    try:
        return _main(args)
    except KeyboardInterrupt:
        print(f"interrupted: rerun the same command to resume ({args.out}: finished folds are kept, the "
              "interrupted one is redone)", file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk, a folder that became read-only, a vanished mount: while working
        print(f"error: {os_error_message(exc)}; rerun the same command to resume once it is fixed", file=sys.stderr)
        return 1


def os_error_message(exc: OSError) -> str:
    """One line for an operating-system error: what failed and on which file."""
    what = exc.strerror or str(exc)
    return f"{what.lower() if exc.errno == errno.ENOSPC else what} while writing {exc.filename}" if exc.filename \
        else what


def _main(args: argparse.Namespace) -> int:
    try:
        if args.action == "collect" or args.collect:
            print(collect(args.out))
            return 0
        check_output_folder(args.out, "--out")
        if args.device:  # an unavailable device stops here, before any data work
            try:
                select_device(args.device)
            except (RuntimeError, ValueError) as exc:
                raise RunError(f"{exc} (--device)") from None
        executor = choose_executor(args)
        if args.ablation and "amplitude" in args.ablation:
            return _amplitude_sweep(args, executor)
        if args.amplitudes or args.seeds:
            raise RunError("--amplitudes and --seeds belong to --ablation amplitude")
        run = resolve_run(
            args.profile, dataset=args.dataset, data_root=args.root, scheme=args.scheme, weights=args.weights,
            roots={name: getattr(args, f"root_{name}") for name in COMPOSITE_SOURCES},
            pretrained=False if args.no_pretrained else None, caller="train", progress=not args.quiet,
            **_overrides(args),
            errors="skip" if args.skip_bad_rows else "raise", fill_missing_frames=args.fill_missing_frames,
        )
        print(table_caveat(run))
        print(run_experiment(run, args.out, args.ablation, cache_dir=args.cache_dir, progress=not args.quiet,
                             executor=executor))
    except (RunError, DatasetError, PretrainedWeightsError, ConfigMismatchError, ExecutorError, ConfigError,
            OutputFolderError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except IncompleteError as exc:  # the tables of what is done, then what is not
        print(exc.tables)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except NoFinishedFoldsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _amplitude_sweep(args: argparse.Namespace, executor: Executor) -> int:
    """``--ablation amplitude``: synthetic sets only, checked before any data or pre-training work."""
    if args.ablation != ["amplitude"]:
        raise RunError("--ablation amplitude runs alone: start the other tables with their own command")
    root = args.root or os.environ.get(DATA_ROOT_ENV)
    composite = [name for name in COMPOSITE_SOURCES if getattr(args, f"root_{name}")]
    real = root and Path(root).is_dir() and synthetic_params(Path(root)) is None
    if args.dataset not in (None, "synthetic") or composite or real:
        given = args.dataset or ("megc2019" if composite else f"the dataset in {root}")
        raise RunError(f"the amplitude sweep needs synthetic data, where the expression's amplitude can be set; got "
                       f"{given}. It generates its own sets under --out (leave out --dataset, --root and "
                       f"${DATA_ROOT_ENV})")
    if args.root:
        raise RunError("the amplitude sweep generates its own synthetic sets under --out: leave out --root")
    if not isinstance(executor, InProcess):
        raise RunError("the amplitude sweep runs in this process (its rows are small CPU runs): leave out --executor")
    if args.seed is not None or args.variant is not None:
        raise RunError("the amplitude sweep sets each run's seed (--seeds) and variant (its rows): leave out "
                       "--seed and --variant")
    given = {k: v for k, v in [("amplitudes", args.amplitudes), ("seeds", args.seeds), ("epochs", args.epochs)] if v}
    table = run_amplitude_sweep(
        args.out, args.profile, cache_dir=args.cache_dir, progress=not args.quiet, **given,
        weights=args.weights, pretrained=False if args.no_pretrained else None, caller="train",
        **_overrides(args, leave_out=("variant", "seed", "epochs")),  # the sweep's rows, --seeds and its epochs
    )
    print((args.out / "amplitude.md").read_text())
    print("\n".join(sweep_verdict(table)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
