"""Batch dubbing from a manifest: goes on past failures, resumes, writes a JSON report.

Manifest: ``.csv`` (a header row) or ``.jsonl`` (one JSON object a line). Required keys: video,
audio, output. Optional keys: any ``lipdub run`` option by its long name without dashes (style,
engine, face, length_policy, crf, seed, steps, sampler, device, preview, lips_from). Relative paths are relative to the
manifest's folder. Empty CSV cells and JSON nulls mean "the default".

Exit codes (stable, for scripts): 0 every item ok or skipped; 6 some items failed; 2 bad manifest
(raised as InputError before any item runs). The report's ``exit_code`` holds 0 or 6.

Several processes (``accelerate launch -m lipdub batch ...``): item i belongs to process
``i % num_processes``; each process writes its own report (``<report>.rankN.json``).
"""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Callable

from .errors import InputError, LipdubError
from .pipeline import dub

Progress = Callable[[str, int, int], None]
EXIT_OK = 0
EXIT_SOME_FAILED = 6
EXIT_BAD_MANIFEST = InputError.exit_code  # 2
REQUIRED = ("video", "audio", "output")
PATH_KEYS = ("video", "audio", "output", "style", "preview", "lips_from")
OPTIONS = {"style": str, "engine": str, "face": str, "length_policy": str, "crf": int, "seed": int,
           "steps": int, "sampler": str, "device": str, "preview": str, "lips_from": str}
MANIFEST_SUFFIXES = (".csv", ".jsonl")


# --------------------------------------------------------------------------- manifest

def _item(raw: dict, where: str, base: Path) -> dict:
    """One manifest row -> {"line", "video", "audio", "output", "options"} with absolute paths."""
    row = {}
    for key, value in raw.items():
        if key is None:  # csv.DictReader puts surplus cells under None
            raise InputError(f"{where}: more cells than the header has columns")
        name = str(key).strip().lower().replace("-", "_")
        if name not in REQUIRED and name not in OPTIONS:
            raise InputError(f"{where}: unknown column {key!r} (use {', '.join(REQUIRED + tuple(OPTIONS))})")
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            continue
        if isinstance(value, (dict, list)):
            raise InputError(f"{where}: {name} must be a single value, not {type(value).__name__}")
        want = OPTIONS.get(name, str)
        if want is int:
            try:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                value = int(value)
            except (TypeError, ValueError):
                raise InputError(f"{where}: {name} must be a whole number, not {value!r}") from None
        else:
            value = str(value)
        if name in PATH_KEYS:
            value = Path(os.path.expanduser(value))
            value = value if value.is_absolute() else base / value
        row[name] = value
    missing = [k for k in REQUIRED if k not in row]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)}")
    return {"video": row.pop("video"), "audio": row.pop("audio"), "output": row.pop("output"), "options": row}


def _rows_csv(path: Path):
    """(line number, row dict) of a CSV manifest."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        try:
            header = reader.fieldnames
            if not header:
                raise InputError(f"{path}:1: no header row (video,audio,output,...)")
            names = [str(h).strip().lower().replace("-", "_") for h in header]
            missing = [k for k in REQUIRED if k not in names]
            if missing:
                raise InputError(f"{path}:1: header lacks the column(s) {', '.join(missing)}")
            unknown = [h for h, n in zip(header, names) if n not in REQUIRED and n not in OPTIONS]
            if unknown:
                raise InputError(f"{path}:1: unknown column(s) {', '.join(map(repr, unknown))} "
                                 f"(use {', '.join(REQUIRED + tuple(OPTIONS))})")
            for row in reader:
                if any(v not in (None, "") and str(v).strip() for v in row.values()):
                    yield reader.line_num, row
        except csv.Error as err:
            raise InputError(f"{path}:{reader.line_num}: unreadable CSV ({err})") from None


def _rows_jsonl(path: Path):
    """(line number, object) of a JSON-lines manifest."""
    with open(path, encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{path}:{n}: not valid JSON ({err.msg})") from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{n}: each line must be a JSON object")
            yield n, obj


def read_manifest(manifest) -> list[dict]:
    """Items of a manifest: [{"line", "video", "audio", "output", "options"}] (paths absolute).
    InputError naming the file (and the line) for a missing, unreadable or malformed manifest."""
    from .media.probe import check_readable

    path = check_readable(manifest, "manifest")
    if path.suffix.lower() not in MANIFEST_SUFFIXES:
        raise InputError(f"{path}: a manifest must be a .csv or .jsonl file")
    base = path.resolve().parent
    rows = _rows_csv(path) if path.suffix.lower() == ".csv" else _rows_jsonl(path)
    items, outputs = [], {}
    try:
        for n, raw in rows:
            it = dict(_item(raw, f"{path}:{n}", base), line=n)
            key = os.path.normcase(os.path.abspath(it["output"]))
            if key in outputs:
                raise InputError(f"{path}:{n}: output {it['output']} is also written by line {outputs[key]}")
            outputs[key] = n
            items.append(it)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read the manifest ({err.strerror or err})") from None
    if not items:
        raise InputError(f"{path}: the manifest lists no items")
    return items


# --------------------------------------------------------------------------- helpers

def is_complete(path) -> bool:
    """True when ``path`` is a finished video: ffprobe reads it (lipdub.media.probe.probe), its
    duration is > 0, and its last second decodes without a single error. (A file cut short after
    a fast-start header still probes fine; its missing tail shows up as decode errors.)"""
    from .media.probe import probe, run_tool

    path = Path(path)
    if not path.is_file():
        return False
    try:
        if probe(path).duration <= 0:
            return False
    except LipdubError:
        return False
    from .media.proc import tool_path

    r = run_tool(["ffmpeg", "-nostdin", "-v", "error", "-sseof", "-1", "-i", tool_path(path), "-f", "null", "-"],
                 "check outputs")
    return r.returncode == 0 and not r.stderr.strip()


def _stat(path) -> list | None:
    """[size, mtime_ns] of a file, or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _previous(report: Path) -> dict:
    """{output path: item} of the outputs an earlier run of this batch wrote or checked (its report)."""
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
        return {str(it["output"]): it for it in data.get("items", [])
                if isinstance(it, dict) and it.get("status") in ("ok", "skipped") and it.get("output_stat")}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}


def detect_processes() -> tuple[int, int]:
    """(process index, process count): from accelerate's PartialState when this process was
    started by ``accelerate launch`` / torchrun (WORLD_SIZE, RANK or ACCELERATE_* set) and
    accelerate is installed; otherwise (0, 1)."""
    env = os.environ
    launched = "WORLD_SIZE" in env or "RANK" in env or any(k.startswith("ACCELERATE_") for k in env)
    if not launched:
        return 0, 1
    try:
        from accelerate import PartialState
    except ImportError:
        return 0, 1
    state = PartialState()
    return int(state.process_index), int(state.num_processes)


def report_path(manifest, report=None, process_index: int = 0, num_processes: int = 1) -> Path:
    """The report file: ``report`` or ``<manifest stem>.report.json`` beside the manifest, with
    ``.rankN`` before the suffix when there are several processes."""
    p = Path(report) if report is not None else Path(manifest).with_name(f"{Path(manifest).stem}.report.json")
    return p.with_name(f"{p.stem}.rank{process_index}{p.suffix}") if num_processes > 1 else p


def _write_report(path: Path, data: dict) -> None:
    from .media.atomic import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# --------------------------------------------------------------------------- run

def run_batch(manifest, report=None, overwrite: bool = False, progress: Progress | None = None,
              process_index: int = 0, num_processes: int = 1) -> dict:
    """Dub every item of ``manifest`` that belongs to this process (item i when
    ``i % num_processes == process_index``) and write the JSON report (see report_path); the
    report is rewritten atomically after each item, so an interrupted batch leaves a valid one.

    Without ``overwrite``, an existing output is skipped only when this batch's report records it
    as written (or skipped) by lipdub, unchanged since (size and modification time) and complete
    (is_complete); such a file that does not decode to its end is redone; any other existing file
    (one lipdub did not record, or one changed since) fails its row (``already exists``), as
    ``lipdub run`` refuses it. A failing item (any exception) is recorded and the
    batch goes on. progress(stage, done, total): ("batch", items done, items of this process), and
    the dub's own stages for the current item.
    Returns the report: {"manifest", "report", "process_index", "num_processes", "complete",
    "counts": {"ok", "skipped", "failed"}, "exit_code" (0 or 6), "seconds", "items": [{"index"
    (0-based row), "line", "video", "audio", "output", "status" ("ok" | "skipped" | "failed"),
    "error" (one line or None), "exit_code" (0, or the error's exit code; 1 for an unexpected
    error), "seconds", "summary" (the dub summary, or None)}]}.
    Raises InputError (exit code 2) for a bad manifest, before any item runs.
    """
    from .pipeline import check_output

    if not (0 <= int(process_index) < int(num_processes)):
        raise InputError(f"process index {process_index} is outside 0..{int(num_processes) - 1}")
    items = read_manifest(manifest)
    out = report_path(manifest, report, process_index, num_processes)
    check_output(out, True, [manifest], (".json",), "report")
    mine = [(i, it) for i, it in enumerate(items) if i % num_processes == process_index]
    previous = _previous(out)
    t0 = time.perf_counter()
    rep = {"manifest": str(manifest), "report": str(out), "process_index": process_index,
           "num_processes": num_processes, "complete": False, "counts": {"ok": 0, "skipped": 0, "failed": 0},
           "exit_code": EXIT_OK, "seconds": 0.0, "items": []}
    for done, (i, it) in enumerate(mine):
        if progress:
            progress("batch", done, len(mine))
        rec = {"index": i, "line": it["line"], "video": str(it["video"]), "audio": str(it["audio"]),
               "output": str(it["output"]), "status": "ok", "error": None, "exit_code": 0, "seconds": 0.0,
               "summary": None, "output_stat": None}
        t = time.perf_counter()
        try:
            path, prev = Path(it["output"]), previous.get(str(it["output"]))
            ours = prev is not None and prev["output_stat"] == _stat(path)  # as lipdub left it
            complete = ours and is_complete(path)
            if not overwrite and complete:
                rec["status"] = "skipped"
            else:
                # replaced on request, or lipdub's own recorded file that does not decode to the end
                redo = overwrite or (ours and not complete)
                rec["summary"] = dub(it["video"], it["audio"], it["output"], progress=progress, overwrite=redo,
                                     **it["options"])
            rec["output_stat"] = _stat(path)
        except KeyboardInterrupt:
            rep["seconds"] = round(time.perf_counter() - t0, 3)
            _write_report(out, rep)
            raise
        except Exception as err:  # LipdubError or a bug: record it and go on
            rec["status"], rec["error"] = "failed", _one_line(err)
            rec["exit_code"] = getattr(err, "exit_code", 1) if isinstance(err, LipdubError) else 1
            if not isinstance(err, LipdubError):
                rec["error"] = f"internal error: {type(err).__name__}: {rec['error']}"
        rec["seconds"] = round(time.perf_counter() - t, 3)
        rep["items"].append(rec)
        rep["counts"][rec["status"]] += 1
        rep["exit_code"] = EXIT_SOME_FAILED if rep["counts"]["failed"] else EXIT_OK
        rep["seconds"] = round(time.perf_counter() - t0, 3)
        _write_report(out, rep)
    rep["complete"] = True
    rep["seconds"] = round(time.perf_counter() - t0, 3)
    _write_report(out, rep)
    if progress:
        progress("batch", len(mine), len(mine))
    return rep
