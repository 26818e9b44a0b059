"""Loaders for CASME II, SAMM and SMIC-HS as their owners distribute them.

Each loader takes the folder a user gets from the dataset's owners and returns a list of
:class:`~mpt_utils.data.samples.Sample`. Nothing is decoded here: frames are read later by
:func:`~mpt_utils.data.clips.read_clip`.

Real-world quirks handled (each has a test with a fixture in the real layout):

- CASME II: ``.xlsx`` sheet or a CSV export, both sheet versions (extra unnamed columns, column
  names with or without spaces), apex cells holding ``"/"`` (estimated as the middle frame,
  flagged on the sample and reported), action units such as ``"4+L10"``;
- SAMM: title rows above the header row, zero-padded subjects (``"006"``), grayscale frames;
- SMIC-HS: no spreadsheet: labels from folder names, no apex (the middle frame, flagged);
- frames as ``.jpg``, ``.bmp`` or ``.png``, numbers that do not start at 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..runtime import say_once
from .samples import DEFAULT_SCHEME, Sample, apply_scheme

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".bmp", ".png")

#: Where each coded dataset's sheet is looked for (first match wins).
SHEET_PATTERNS = {
    "casme2": ("CASME2-coding-*.xlsx", "CASME2-coding-*.csv", "CASME2*coding*.*"),
    "samm": ("SAMM_Micro_FACS_Codes*.xlsx", "SAMM*.xlsx", "SAMM*.csv"),
}

#: The file :func:`~mpt_utils.data.make_synthetic` writes beside a synthetic set.
SYNTHETIC_MARKER = "SYNTHETIC.json"
_DIGITS = re.compile(r"(\d+)(?!.*\d)")


class DatasetError(ValueError):
    """A dataset folder or sheet is not what the loader expects; the message says what to do."""


# --- frames --------------------------------------------------------------------------------------


def frame_number(path: Path) -> int:
    """The frame number in a file name: the last run of digits (``reg_img46.jpg`` -> 46)."""
    match = _DIGITS.search(path.stem)
    if match is None:
        raise DatasetError(f"cannot read a frame number from the file name {path}")
    return int(match.group(1))


def list_frames(folder: Path) -> tuple[tuple[Path, ...], tuple[int, ...]]:
    """All image files of ``folder`` sorted by frame number, and those numbers."""
    if not folder.is_dir():
        raise DatasetError(f"frame folder {folder} does not exist")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DatasetError(
            f"frame folder {folder} holds no frames ({', '.join(IMAGE_SUFFIXES)} expected)"
        )
    pairs = sorted((frame_number(p), p) for p in files)
    numbers = [n for n, _ in pairs]
    if len(set(numbers)) != len(numbers):
        raise DatasetError(f"frame folder {folder} has two files with the same frame number")
    return tuple(p for _, p in pairs), tuple(numbers)


#: How a caller leaves bad sheet rows out, named in the messages that could use it.
SKIP_HINT = "or leave such rows out (--skip-bad-rows on the command line, errors='skip' in Python)"
#: How a caller fills missing key frames from their neighbours.
FILL_HINT = "--fill-missing-frames on the command line, fill_missing_frames=True in Python"


def _check_span(where: str, folder: Path, numbers: Sequence[int], onset: int, offset: int) -> None:
    if onset > offset:
        raise DatasetError(
            f"{where}: the onset frame {onset} comes after the offset frame {offset}; correct the sheet row "
            f"(the two are swapped or mistyped), {SKIP_HINT}"
        )
    if not numbers[0] <= onset <= offset <= numbers[-1]:
        raise DatasetError(
            f"{where}: onset {onset} / offset {offset} lie outside the frames present in {folder} "
            f"({numbers[0]}..{numbers[-1]}); check the sheet row against the frames on disk, {SKIP_HINT}"
        )


def _check_key_frames(where: str, folder: Path, numbers: Sequence[int], keys: dict[str, int | None],
                      fill: bool) -> list[str]:
    """The coded key frames (``{"onset": 12, ...}``) whose files are missing from ``folder``: an error unless
    ``fill`` (then they are returned, to be reported, and read from their neighbours)."""
    present = set(numbers)
    missing = [f"{name} {number}" for name, number in keys.items() if number is not None and number not in present]
    if missing and not fill:
        raise DatasetError(
            f"{where}: the {', '.join(missing)} frame file(s) are missing from {folder}; re-extract them from the "
            f"dataset's archive, fill them from their neighbours ({FILL_HINT}), {SKIP_HINT}"
        )
    return missing


# --- sheets --------------------------------------------------------------------------------------


def _norm_column(name: object) -> str:
    return re.sub(r"[^a-z]", "", str(name).lower())


def _read_table(path: Path, header_marker: str | None = None):
    """Read an ``.xlsx``/``.xls``/``.csv`` sheet as strings; find the header row by a marker."""
    import pandas as pd

    csv = path.suffix.lower() == ".csv"
    try:
        raw = pd.read_csv(path, header=None, dtype=str, sep=_csv_delimiter(path)) if csv else \
            pd.read_excel(path, header=None, dtype=str)
    except Exception as exc:  # pandas' own words ("specify an engine manually" ...) would not help here
        raise DatasetError(
            f"{path} is not a readable .xlsx/.csv coding sheet ({type(exc).__name__}); replace it with the sheet "
            "from the dataset's download (an .xlsx file, or a CSV export of it)"
        ) from exc
    header_row = 0
    if header_marker is not None:
        marker = _norm_column(header_marker)
        hits = [i for i, row in raw.iterrows() if marker in {_norm_column(v) for v in row.values}]
        if not hits:
            raise DatasetError(f"coding sheet {path} has no header row with a {header_marker!r} column")
        header_row = hits[0]
    table = raw.iloc[header_row + 1 :].copy()
    table.columns = [_norm_column(c) for c in raw.iloc[header_row].values]
    table = table.loc[:, [c for c in table.columns if c and c != "nan" and not c.startswith("unnamed")]]
    return table.dropna(how="all").reset_index(drop=True)


def _csv_delimiter(path: Path) -> str:
    """The CSV export's delimiter: a comma, or the semicolon or tab that spreadsheet programs write in locales
    where the comma is the decimal mark (said once when it is not a comma)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        first = next((line for line in f if line.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    delimiter = max(counts, key=counts.get) if any(counts.values()) else ","
    if delimiter != ",":
        say_once(f"{path.name}: read as {'semicolon' if delimiter == ';' else 'tab'}-separated values")
    return delimiter


def _column(table, path: Path, *names: str) -> str:
    for name in names:
        if _norm_column(name) in table.columns:
            return _norm_column(name)
    raise DatasetError(
        f"coding sheet {path} has no column {names[0]!r} (columns found: {list(table.columns)})"
    )


def _find_sheet(root: Path, patterns: Sequence[str], what: str) -> Path:
    for pattern in patterns:
        found = sorted(p for p in root.glob(pattern) if not p.name.startswith(("~$", ".")))
        if found:
            return found[0]
    raise DatasetError(
        f"no {what} coding sheet found in {root} (looked for {', '.join(patterns)}); "
        "put the sheet from the dataset's download next to its frames folder"
    )


def _check_root(root: str | Path, name: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(
            f"{name} root {root} does not exist; download the dataset from its owners and pass "
            "the folder that holds its coding sheet (or set MPT_DATA_ROOT)"
        )
    return root


def _int_cell(value: object, where: str, column: str) -> int | None:
    """Parse a frame-number cell; ``None`` for the "/" or "-1" of an uncoded apex."""
    text = str(value).strip()
    if text in {"/", "-", "-1", "", "nan", "None"}:
        return None
    try:
        return int(float(text))
    except ValueError:
        raise DatasetError(f"{where}: cannot read {column} {text!r} as a frame number") from None


def _estimate_apex(onset: int, offset: int) -> int:
    return (onset + offset) // 2


def _report_estimated(dataset: str, uncoded: int, outside: list[str]) -> None:
    """Say once how many apexes were estimated: uncoded ones, and coded ones outside onset..offset (named)."""
    if uncoded:
        say_once(f"{dataset}: {uncoded} sample(s) have no coded apex; the middle frame between onset and "
                 "offset stands in for it (Sample.apex_estimated is True for them)")
    if outside:
        say_once(f"{dataset}: {len(outside)} sample(s) have a coded apex outside their onset..offset span ("
                 + "; ".join(outside[:3]) + ("; ..." if len(outside) > 3 else "")
                 + "); the middle frame stands in for it (Sample.apex_estimated is True); correct the sheet if "
                 "the apex was mistyped")


def _report_gaps(dataset: str, gaps: dict[str, list[int]], filled_keys: list[str]) -> None:
    """Say once which frames between onset and offset are missing, and are read from their neighbours."""
    if gaps:
        frames = sum(len(v) for v in gaps.values())
        examples = "; ".join(f"{clip}: {', '.join(map(str, numbers[:4]))}{' ...' if len(numbers) > 4 else ''}"
                             for clip, numbers in list(gaps.items())[:3])
        say_once(f"{dataset}: {frames} frame(s) between onset and offset are missing in {len(gaps)} clip(s) "
                 f"({examples}{'; ...' if len(gaps) > 3 else ''}); each is read from its neighbours")
    if filled_keys:
        say_once(f"{dataset}: {len(filled_keys)} missing key frame(s) filled from their neighbours, as asked ("
                 + "; ".join(filled_keys[:3]) + ("; ..." if len(filled_keys) > 3 else "") + ")")


def _rows_to_samples(
    rows: list[dict], dataset: str, fps: float, cropped: bool, errors: str, fill_missing_frames: bool = False
) -> list[Sample]:
    """Turn parsed sheet rows into samples, checking folders, frame spans, key frames and repeated rows.

    A clip listed twice with the same coding is used once (and reported); listed twice with different codings,
    it is an error. Frames missing between onset and offset are read from their neighbours and reported once;
    a missing key frame (onset, coded apex, offset) is an error unless ``fill_missing_frames``.
    """
    if errors not in {"raise", "skip"}:
        raise ValueError("errors must be 'raise' or 'skip'")
    samples, skipped, repeated, outside, filled_keys = [], [], [], [], []
    gaps: dict[str, list[int]] = {}
    seen: dict[tuple[str, str], dict] = {}
    uncoded = 0
    for row in rows:
        try:
            key = (row["subject"], row["clip"])
            coding = {k: row[k] for k in ("onset", "apex", "offset", "emotion")}
            if key in seen:
                if seen[key]["coding"] != coding:
                    raise DatasetError(
                        f"{row['where']}: the clip is listed a second time with another coding than in "
                        f"{seen[key]['where']} ({coding} against {seen[key]['coding']}); delete the wrong row, "
                        f"{SKIP_HINT}"
                    )
                repeated.append(row["where"])
                continue
            seen[key] = {"coding": coding, "where": row["where"]}
            if not row["folder"].is_dir():
                raise DatasetError(
                    f"{row['where']}: no frame folder at {row['folder']}; the sheet names a clip the "
                    "frames download does not have (wrong root, or an incomplete download)"
                )
            paths, numbers = list_frames(row["folder"])
            onset, offset = row["onset"], row["offset"]
            _check_span(row["where"], row["folder"], numbers, onset, offset)
            apex = row["apex"]
            in_span = apex is not None and onset <= apex <= offset
            keys = {"onset": onset, "apex": apex if in_span else None, "offset": offset}
            filled_keys += [f"{row['subject']}/{row['clip']}: {k}" for k in
                            _check_key_frames(row["where"], row["folder"], numbers, keys, fill_missing_frames)]
            missing = sorted(set(range(onset, offset + 1)) - set(numbers) - {v for v in keys.values() if v is not None})
            if missing:
                gaps[f"{row['subject']}/{row['clip']}"] = missing
            estimated = not in_span
            if apex is None:
                uncoded += 1
            elif not in_span:
                outside.append(f"{row['where']}: apex {apex}, onset..offset {onset}..{offset}")
            if estimated:
                apex = _estimate_apex(onset, offset)
            samples.append(
                Sample(
                    dataset=dataset,
                    subject=row["subject"],
                    clip=row["clip"],
                    frame_paths=paths,
                    frame_numbers=numbers,
                    onset=onset,
                    apex=apex,
                    offset=offset,
                    emotion=row["emotion"],
                    label=row["emotion"],
                    fps=fps,
                    action_units=row.get("aus", ""),
                    cropped=cropped,
                    apex_estimated=estimated,
                )
            )
        except DatasetError as exc:
            if errors == "raise":
                raise
            skipped.append(str(exc))
    if skipped:
        say_once(f"{dataset}: skipped {len(skipped)} sheet row(s): " + "; ".join(skipped[:5]))
    if repeated:
        say_once(f"{dataset}: {len(repeated)} sheet row(s) repeat a clip listed before with the same coding and "
                 "are used once (" + "; ".join(repeated[:3]) + ("; ..." if len(repeated) > 3 else "") + ")")
    _report_estimated(dataset, uncoded, outside)
    _report_gaps(dataset, gaps, filled_keys)
    return samples


def _frames_dir(root: Path, preferred: Sequence[str], holds: str) -> Path:
    """The folder holding the subject folders: a preferred name, else any child that holds them."""
    for name in preferred:
        if (root / name).is_dir():
            return root / name
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    for folder in candidates:
        if any(folder.glob(holds)):
            return folder
    raise DatasetError(
        f"no frames folder found under {root}: expected one of {list(preferred)} or a folder "
        f"holding {holds!r}"
    )


def _is_cropped_folder(folder: Path) -> bool:
    """Cropped downloads say so in the frames folder's name or its parent's (SMIC_all_cropped/HS)."""
    return any("crop" in part.lower() for part in (folder.name, folder.parent.name))


# --- coded datasets (a sheet row per clip) -------------------------------------------------------


def _coded_rows(
    sheet: Path,
    columns: dict[str, tuple[str, ...]],
    subject_of: Callable[[object, str], str],
    folder_of: Callable[[str, str], Path],
) -> list[dict]:
    """Parse the rows of a coding sheet into the dicts :func:`_rows_to_samples` takes.

    ``columns`` names each field's column as the sheet may write it (first match wins);
    ``subject_of(cell, where)`` turns a Subject cell into the folder's subject id, and
    ``folder_of(subject, clip)`` gives the clip's frame folder.
    """
    table = _read_table(sheet, header_marker="Filename")
    c = {field: _column(table, sheet, *names) for field, names in columns.items()}
    c_aus = next((n for n in ("actionunits", "aus", "au") if n in table.columns), None)
    rows = []
    for i, r in table.iterrows():
        where = f"{sheet.name} row {i + 2}"
        subject, clip = subject_of(r[c["subject"]], where), str(r[c["file"]]).strip()
        onset = _int_cell(r[c["onset"]], where, "onset frame")
        offset = _int_cell(r[c["offset"]], where, "offset frame")
        if onset is None or offset is None:
            raise DatasetError(f"{where}: onset or offset frame is missing")
        rows.append(
            dict(
                where=f"{where} ({subject}/{clip})",
                folder=folder_of(subject, clip),
                subject=subject,
                clip=clip,
                onset=onset,
                apex=_int_cell(r[c["apex"]], where, "apex frame"),
                offset=offset,
                emotion=str(r[c["emotion"]]).strip(),
                aus="" if c_aus is None else str(r[c_aus]).strip(),
            )
        )
    return rows


def load_casme2(root: str | Path, errors: str = "raise", dataset: str = "casme2",
                fill_missing_frames: bool = False) -> list[Sample]:
    """Load CASME II (all emotions; apply a class scheme with :func:`load_dataset`).

    ``root`` holds the coding sheet ``CASME2-coding-*.xlsx`` (or a CSV export) and a frames
    folder: ``Cropped/`` (used as is), ``CASME2_RAW_selected/`` (face-cropped on reading) or any
    folder holding ``subNN/<Filename>/``. ``errors='skip'`` leaves out (and reports) sheet rows
    whose frames are missing or do not cover onset..offset.
    """
    root = _check_root(root, "CASME II")
    sheet = _find_sheet(root, SHEET_PATTERNS["casme2"], "CASME II")
    frames = _frames_dir(root, ["Cropped", "CASME2_RAW_selected", "CASME2-RAW"], "sub*/*")

    def subject_of(cell: object, where: str) -> str:
        number = _int_cell(cell, where, "Subject")
        if number is None:
            raise DatasetError(f"{where}: the Subject cell is empty")
        return f"sub{number:02d}"

    columns = {"subject": ("Subject",), "file": ("Filename",), "onset": ("OnsetFrame",), "apex": ("ApexFrame",),
               "offset": ("OffsetFrame",), "emotion": ("Estimated Emotion", "Emotion")}
    rows = _coded_rows(sheet, columns, subject_of, lambda subject, clip: frames / subject / clip)
    cropped = frames.name == "Cropped" or _is_cropped_folder(frames)
    return _rows_to_samples(rows, dataset, 200.0, cropped, errors, fill_missing_frames)


def load_samm(root: str | Path, errors: str = "raise", fill_missing_frames: bool = False) -> list[Sample]:
    """Load SAMM (all emotions).

    ``root`` holds ``SAMM_Micro_FACS_Codes_v2.xlsx`` (title rows above the header are skipped)
    and ``SAMM_CROP/`` (used as is) or ``SAMM/`` (face-cropped on reading), with frames in
    ``<subject>/<Filename>/``. Subjects keep their zero padding (``"006"``).
    """
    root = _check_root(root, "SAMM")
    sheet = _find_sheet(root, SHEET_PATTERNS["samm"], "SAMM")
    frames = _frames_dir(root, ["SAMM_CROP", "SAMM"], "*/*_*")

    def subject_of(cell: object, where: str) -> str:
        text = str(cell).strip()
        return f"{int(float(text)):03d}" if text.replace(".", "").isdigit() else text

    def folder_of(subject: str, clip: str) -> Path:
        nested = frames / subject / clip
        return frames / clip if not nested.is_dir() and (frames / clip).is_dir() else nested  # flat copies

    columns = {"subject": ("Subject",), "file": ("Filename",), "onset": ("Onset Frame",), "apex": ("Apex Frame",),
               "offset": ("Offset Frame",), "emotion": ("Estimated Emotion", "Emotion")}
    rows = _coded_rows(sheet, columns, subject_of, folder_of)
    cropped = frames.name == "SAMM_CROP" or _is_cropped_folder(frames)
    return _rows_to_samples(rows, "samm", 200.0, cropped, errors, fill_missing_frames)


# --- SMIC-HS -------------------------------------------------------------------------------------


def _smic_hs(root: Path) -> Path | None:
    """The SMIC-HS folder (``sN/micro/...`` inside) at or under ``root``, or None."""
    hs = root if any(root.glob("s*/micro")) else next(iter(sorted(root.glob("**/HS"))), None)
    return hs if hs is not None and any(hs.glob("s*/micro")) else None


def load_smic(root: str | Path, errors: str = "raise", fill_missing_frames: bool = False) -> list[Sample]:
    """Load SMIC-HS from ``HS/`` (or its parent): ``sN/micro/<emotion>/<clip>/`` frames.

    SMIC has no coding sheet: the emotion is the folder name, onset and offset are the first
    and last frames, and the apex is the middle frame (``apex_estimated`` is True).
    """
    root = _check_root(root, "SMIC")
    hs = _smic_hs(root)
    if hs is None:
        raise DatasetError(
            f"no SMIC-HS layout under {root}: expected HS/sN/micro/<positive|negative|surprise>/<clip>/"
        )
    rows = []
    for clip_dir in sorted(hs.glob("s*/micro/*/*")):
        if not clip_dir.is_dir():
            continue
        subject, emotion = clip_dir.parts[-4], clip_dir.parts[-2]
        try:
            _, numbers = list_frames(clip_dir)
        except DatasetError:
            if errors == "raise":
                raise
            continue
        rows.append(
            dict(
                where=f"SMIC {subject}/{emotion}/{clip_dir.name}",
                folder=clip_dir,
                subject=subject,
                clip=clip_dir.name,
                onset=numbers[0],
                apex=None,
                offset=numbers[-1],
                emotion=emotion,
            )
        )
    if not rows:
        raise DatasetError(f"no clip folders found under {hs}/sN/micro/<emotion>/")
    return _rows_to_samples(rows, "smic", 100.0, _is_cropped_folder(hs), errors, fill_missing_frames)


# --- one entry point -----------------------------------------------------------------------------

LOADERS = {
    "casme2": load_casme2,
    "samm": load_samm,
    "smic": load_smic,
    "synthetic": lambda root, errors="raise", fill_missing_frames=False: load_casme2(
        root, errors=errors, dataset="synthetic", fill_missing_frames=fill_missing_frames),
}


def load_dataset(
    name: str, root: str | Path, scheme: str | None = None, errors: str = "raise", fill_missing_frames: bool = False
) -> list[Sample]:
    """Load a dataset and label it under a class scheme.

    Parameters
    ----------
    name: ``"casme2"``, ``"samm"``, ``"smic"`` or ``"synthetic"`` (the generated set, which uses
        the CASME II layout and loader).
    root: the dataset folder (see each loader).
    scheme: class scheme (``"casme2"``, ``"samm"``, ``"smic"``, ``"megc2019"``); ``None`` uses the
        dataset's own. Emotions outside the scheme are dropped with a reported count.
    errors: ``"raise"`` (default) or ``"skip"`` for sheet rows that do not match the frames (left out and
        reported once).
    fill_missing_frames: read a missing onset, apex or offset frame from its neighbours (reported once) instead
        of stopping. Frames missing between them are always read from their neighbours, and reported once.
    """
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(LOADERS)}")
    samples = LOADERS[name](root, errors=errors, fill_missing_frames=fill_missing_frames)
    return apply_scheme(samples, scheme or DEFAULT_SCHEME[name])


def detect_dataset(root: str | Path) -> str | None:
    """Which dataset a folder holds, from its layout: ``"synthetic"`` (a set made by ``make_synthetic``),
    ``"casme2"`` or ``"samm"`` (their coding sheets), ``"smic"`` (``HS/sN/micro/``), or None when none of them.

    Raises :class:`DatasetError` when the folder does not exist.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"data folder {root} does not exist")
    if (root / SYNTHETIC_MARKER).is_file():
        return "synthetic"
    for name, patterns in SHEET_PATTERNS.items():
        if any(p for pattern in patterns for p in root.glob(pattern) if not p.name.startswith(("~$", "."))):
            return name
    return "smic" if _smic_hs(root) is not None else None


def frame_index(sample: Sample, frame_no: float) -> float:
    """Position of a (possibly fractional) frame number in ``sample.frame_paths``."""
    return float(np.interp(frame_no, sample.frame_numbers, np.arange(len(sample.frame_numbers))))
