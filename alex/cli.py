"""The ``alex`` command line: parse, validate, call the library, print. Nothing else lives here.

Exit codes (DESIGN.md): 0 all done; 1 finished but some inputs failed; 2 bad usage or
configuration (nothing written); 3 unexpected internal error (the traceback is printed and
appended to ``alex-errors.log`` in the run folder or store). The options of ``train``,
``evaluate`` and ``predict`` are derived from their dataclasses (``alex.heads.options``).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, List, NoReturn, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from alex import __version__
from alex.cli_examples import epilog
from alex.cli_renames import alex_command
from alex.errors import AlexError, UsageError
from alex.store.location import store_location

app = typer.Typer(
    name="alex",
    help="Decode videos once, cache frozen-encoder features in a queryable store, train light heads on them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# No markup and no emoji codes: what alex prints holds user text (paths, specs, SQL, video ids),
# which must appear as written; styles are applied with rich Text objects only.
out = Console(soft_wrap=True, emoji=False, markup=False)
err = Console(stderr=True, soft_wrap=True, emoji=False, markup=False)

T = TypeVar("T")
DEFAULT_STORE = Path("alex-store")


CRASH_LOG = "alex-errors.log"
INTERNAL_ERROR = 3


INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def _run(call: Callable[[], T], crash_log: Path | None = None, create: bool = False, kept: str | None = None) -> T:
    """Turn alex's typed errors into a one-line message and their exit code; anything else is a
    bug: its traceback is printed, appended to ``crash_log/alex-errors.log`` when that folder
    exists (or is a run folder to ``create``), and the exit code is 3. Ctrl-C exits 130 saying
    what was ``kept``."""
    try:
        return call()
    except KeyboardInterrupt:
        err.print(Text.assemble(("interrupted", "bold yellow"), f": {kept}" if kept else ""), highlight=False, soft_wrap=True)
        raise typer.Exit(INTERRUPTED) from None
    except AlexError as exc:
        _usage_error(str(exc), exc.exit_code)
    except typer.Exit:
        raise
    except Exception:
        _report_crash(traceback.format_exc(), crash_log, create)
        raise typer.Exit(INTERNAL_ERROR) from None


def _usage_error(message: str, exit_code: int = 2) -> NoReturn:
    """One line on stderr and the exit code; user data in the message (paths, specs, SQL) is
    printed as it is, never as rich markup."""
    err.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code) from None


def _report_crash(text: str, folder: Path | None, create: bool = False) -> None:
    err.print(text, markup=False, highlight=False, end="")
    where = ""
    if folder is not None and create:
        Path(folder).mkdir(parents=True, exist_ok=True)
    if folder is not None and Path(folder).is_dir():
        log = Path(folder) / CRASH_LOG
        with log.open("a") as handle:
            handle.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} alex {__version__}: {' '.join(sys.argv)}\n{text}")
        where = f"; traceback also in {log}"
    err.print(Text.assemble(("internal error", "bold red"), f" (a bug in alex, not a problem with your input){where}. Exit code 3."),
              highlight=False)


def flag(name: str, *short: str, help: str) -> Any:
    """A boolean option written ``--NAME`` / ``--no-NAME``, shown as the flag it is (no ``<bool>``)."""
    return typer.Option(False, f"--{name}/--no-{name}", *short, help=help, metavar="", show_default=False)


def _version(value: bool) -> None:
    if value:
        out.print(f"alex {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """alex: video features extracted once, trained on many times."""


@app.command(cls=alex_command("extract"), epilog=epilog("extract"))
def extract(
    videos: Path = typer.Option(..., "--videos", help="Folder of videos (searched recursively) or one video file."),
    store: str = typer.Option(str(DEFAULT_STORE), "--store", help="Feature store folder (created if missing), or an fsspec URL (s3://bucket/path).",
                              callback=lambda value: store_location(value)),
    encoder: Optional[List[str]] = typer.Option(
        None, "--encoder", "-e",
        help="[NAME=]FAMILY[:MODEL][@WEIGHTS], repeatable; all share one decode pass. "
        "Default: clip (clip:ViT-B-32@laion2b_s34b_b79k). Offline: pixels, clip:tiny@random.",
    ),
    fps: Optional[float] = typer.Option(None, "--fps", help="Sample this many frames per second of video time (default 1.0)."),
    num_frames: Optional[int] = typer.Option(None, "--num-frames", help="Instead of --fps: this many frames spread evenly over each video."),
    clip_frames: Optional[int] = typer.Option(None, "--clip-frames", help="Clip encoders (tubelet, languagebind): sampled frames per clip."),
    clip_stride: Optional[int] = typer.Option(None, "--clip-stride", help="Clip encoders: sampled frames between clip starts (default: --clip-frames)."),
    keep_tokens: bool = flag("keep-tokens", help="languagebind: also store the per-frame tokens of hidden_states[-2] (for LLM heads)."),
    views: int = typer.Option(1, "--views", help="Per-frame encoders: K seeded augmented views per frame (random resized crop, flip); view 0 is the plain frame."),
    seed: int = typer.Option(0, "--seed", help="Seeds the augmented views: same seed, same views."),
    audio_dir: Optional[Path] = typer.Option(
        None, "--audio-dir",
        help="Audio encoders (audio, perceiver-mm) read each video's audio from DIR/<video path relative to --videos>"
        " with .wav or .flac for its suffix, instead of the container's track (CREMA-D ships AudioWAV/ beside "
        "VideoFlash/). A missing or broken file fails only those encoders for that video.",
    ),
    dtype: str = typer.Option(
        "auto", "--dtype",
        help="The encoders' precision: auto (bf16 on a CPU with native bf16 and on a GPU that has it, fp16 on an older "
             "GPU, fp32 elsewhere), fp32, bf16 or fp16. Recorded per encoder; a rerun keeps an encoder's own."),
    store_dtype: str = typer.Option("float16", "--store-dtype", help="Stored float type of the features: float16 or float32."),
    glob: Optional[List[str]] = typer.Option(None, "--glob", help="Select files by glob relative to --videos (repeatable) instead of by video extension."),
    retry_errors: bool = flag("retry-errors", help="Try again the videos that failed in an earlier run."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    batch_size: int = typer.Option(32, "--batch-size", help="Frames per encoder batch (frames of several videos are mixed)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Decode processes running ahead of the encoder (0: decode in this process). Default: CPU cores - 1, at most 8."),
    shard_size: int = typer.Option(256, "--shard-size", help="Videos per store segment; each is committed atomically when complete."),
    engine: str = typer.Option("local", "--engine", help="local: decode processes on this machine; ray: a Ray Data "
                               "pipeline (decode tasks, encoder actors with a GPU each where there are GPUs) on a Ray cluster."),
    address: Optional[str] = typer.Option(None, "--address", help="--engine ray: the cluster (auto, ray://HOST:PORT); "
                                          "default: RAY_ADDRESS, else a Ray started on this machine."),
    video_timeout: float = typer.Option(
        600.0, "--video-timeout",
        help="Seconds a decode worker may go without progress on one video before it is stopped and the video "
        "recorded as an error (the run goes on). Needs --workers 1 or more.",
    ),
    quiet: bool = flag("quiet", "-q", help="No progress: no bar on a terminal, no status lines elsewhere (every $ALEX_PROGRESS_INTERVAL s, default 30)."),
    profile: bool = flag("profile", help="Print the time spent decoding, preprocessing, encoding and writing."),
) -> None:
    """Decode videos once, run frozen encoders on frames sampled by time, write a feature store."""
    if fps is not None and num_frames is not None:
        _usage_error("choose one of --fps and --num-frames")
    if dtype in ("float16", "float32"):  # what --dtype meant before it named the encoders' precision
        err.print(f"note: --dtype {dtype} is now --store-dtype {dtype}; --dtype is the encoders' precision (the old "
                  "spelling is accepted until the next release)", highlight=False)
        dtype, store_dtype = "auto", dtype
    from alex.pipeline.extract import ExtractOptions, extract as run_extract

    options = ExtractOptions(
        videos=videos, store=store, encoders=list(encoder or []) or ["clip"], fps=fps if fps is not None else 1.0,
        num_frames=num_frames, dtype=dtype, store_dtype=store_dtype, globs=list(glob or []) or None, retry_errors=retry_errors,
        device=device, batch_size=batch_size, workers=workers, quiet=quiet, shard_videos=shard_size,
        video_timeout=video_timeout, engine=engine, address=address,
        clip_frames=clip_frames, clip_stride=clip_stride, keep_tokens=keep_tokens, views=views, seed=seed,
        audio_dir=audio_dir,
    )
    report = _run(lambda: run_extract(options), crash_log=store,
                  kept=f"the videos finished so far are committed in {store} (the ones in flight were dropped); "
                       "run the same command again to extract the rest")
    _print_extract_report(report, profile)
    raise typer.Exit(report.exit_code)


def _print_extract_report(report: Any, profile: bool) -> None:
    wall = report.profile.get("wall_s", 0.0)
    names = ", ".join(report.encoders)
    out.print(
        f"extracted {len(report.ok)} video(s), {report.frames} frames, with {names} into {report.store} "
        f"in {wall:.1f} s; {report.up_to_date} already up to date",
        highlight=False,
    )
    for path, why in report.skipped_files:
        out.print(f"  skipped {path}: {why}", highlight=False, markup=False)
    if report.failed:
        out.print(Text.assemble((f"{len(report.failed)} failed", "red"), " (kept in the store as status 'error'):"))
        for video_id, reason in report.failed:
            out.print(f"  {video_id}: {reason}", highlight=False, soft_wrap=True, markup=False)
    _print_no_audio([list(pair) for pair in report.no_audio])
    if report.failed_before:
        out.print(Text.assemble((f"{len(report.failed_before)} failed in an earlier run", "red"),
                                " (--retry-errors tries them again):"))
        for video_id, reason in report.failed_before:
            out.print(f"  {video_id}: {reason}", highlight=False, soft_wrap=True, markup=False)
    if profile:
        table = Table(title="where the time went", title_justify="left")
        table.add_column("stage")
        table.add_column("seconds", justify="right")
        table.add_column("note")
        p = report.profile
        rows = [
            ("decode", p.get("decode_s", 0.0), "decode workers, summed over processes"),
            ("preprocess", p.get("preprocess_s", 0.0), "RGB conversion, resize, crop (workers)"),
            ("encode", p.get("encode_s", 0.0), "host->device copy and model forward"),
            ("write", p.get("write_s", 0.0), "HDF5 and Parquet writes, commits"),
            ("wait for decoders", p.get("wait_s", 0.0), "encoder idle: decoding is the bottleneck if large"),
            ("  of which at start", p.get("start_wait_s", 0.0), "models loaded, first frames not decoded yet"),
            ("wall", wall, f"{report.frames / wall if wall else 0:.1f} frames/s"),
        ]
        for stage, seconds, note in rows:
            table.add_row(stage, f"{seconds:.2f}", note)
        out.print(table)


@app.command(cls=alex_command("info"), epilog=epilog("info"))
def info(
    store: str = typer.Option(str(DEFAULT_STORE), "--store", help="Feature store folder or URL (a bare STORE argument is the old spelling).",
                              callback=lambda value: store_location(value)),
    as_json: bool = flag("json", help="Print machine-readable JSON."),
) -> None:
    """Videos ok and failed (with reasons), encoders, rows and bytes of a store."""
    from alex.store.summary import summarize

    summary = _run(lambda: summarize(store))
    if as_json:
        out.print_json(json.dumps(summary, default=str))
        return
    out.print(Text.assemble((str(store), "bold"), f"  format v{summary['format_version']}, "
                            f"{_human_bytes(summary['bytes'])} on disk, {summary['segments']} segment(s)"), highlight=False)
    out.print(f"videos: {summary['videos_ok']} ok, {summary['videos_failed']} failed", highlight=False)
    for video_id, reason in summary["failed"]:
        out.print(Text.assemble("  ", ("failed", "red"), f" {video_id}: {reason}"), highlight=False, soft_wrap=True)
    for video_id, encoder, reason in summary["failed_items"]:
        out.print(Text.assemble("  ", ("failed", "red"), f" {video_id} with encoder {encoder}: {reason}"), highlight=False, soft_wrap=True)
    _print_no_audio(summary["no_audio"])
    table = Table(title="encoders", title_justify="left")
    keys = ["name", "spec", "dim", "dtype", "sampling", "videos", "no_audio", "rows"]
    if not any(enc["no_audio"] for enc in summary["encoders"]):
        keys.remove("no_audio")  # a column only where some video has no audio track
    for key in keys:
        table.add_column(key.replace("_", " "), justify="right" if key in ("dim", "videos", "no_audio", "rows") else "left")
    for enc in summary["encoders"]:
        table.add_row(*(Text(str(enc[key])) for key in keys))
    out.print(table)


def _print_no_audio(pairs: list[list[str]], shown: int = 5) -> None:
    """Videos without an audio track, per audio encoder: a state, not a failure (a few ids each)."""
    by_encoder: dict[str, list[str]] = {}
    for video_id, encoder in pairs:
        by_encoder.setdefault(encoder, []).append(video_id)
    for encoder, ids in sorted(by_encoder.items()):
        more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
        out.print(Text.assemble("  ", ("no audio", "yellow"), f" for encoder {encoder}: {len(ids)} video(s) without an "
                                f"audio track ({', '.join(ids[:shown])}{more})"), highlight=False, soft_wrap=True)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@app.command(cls=alex_command("verify"), epilog=epilog("verify"))
def verify(
    store: str = typer.Option(str(DEFAULT_STORE), "--store", help="Feature store folder (`alex verify STORE` works too).",
                              callback=lambda value: store_location(value)),
    repair: bool = flag("repair", help="Remove what interrupted writes left, and compact the store without damaged "
                        "videos, marking them to be extracted again (good data is kept)."),
    as_json: bool = flag("json", help="Print machine-readable JSON."),
) -> None:
    """Check a store: every segment's rows and arrays against its tables. Exit 0 when sound, 1 when not."""
    from alex.store.verify import as_json as report_json
    from alex.store.verify import verify as verify_store

    report = _run(lambda: verify_store(store, repair=repair), crash_log=store)
    if as_json:
        out.print_json(report_json(report))
        raise typer.Exit(report.exit_code)
    for line in report.repaired:
        out.print(Text.assemble(("repaired", "green"), f": {line}"), highlight=False, soft_wrap=True)
    for problem in report.problems:
        out.print(Text.assemble(("problem", "bold red"), f": {problem}"), highlight=False, soft_wrap=True)
    for leftover in report.leftovers:
        out.print(Text.assemble(("leftover", "yellow"), f": {leftover}; never read (alex verify --repair removes it)"),
                  highlight=False, soft_wrap=True)
    checked = f"{report.segments} segment(s), {report.items} items, {report.rows} frames rows, {report.arrays} array groups"
    if report.sound:
        out.print(Text.assemble(("sound", "bold green"), f": {store}: {checked}"), highlight=False, soft_wrap=True)
    else:
        hint = "" if report.repaired else "; `alex verify --repair` sets damaged videos aside to be extracted again"
        out.print(Text.assemble(("damaged", "bold red"), f": {store}: {len(report.problems)} problem(s) in {checked}{hint}"),
                  highlight=False, soft_wrap=True)
    raise typer.Exit(report.exit_code)


@app.command(cls=alex_command("compact"), epilog=epilog("compact"))
def compact(
    store: str = typer.Option(str(DEFAULT_STORE), "--store", help="Feature store folder (`alex compact STORE` works too).",
                              callback=lambda value: store_location(value)),
) -> None:
    """Rewrite the live rows and arrays of a store into one segment: fewer files, superseded rows and
    deleted arrays' space given back. Readers see the store before or after, never between."""
    from alex.store.compact import compact as compact_store

    report = _run(lambda: compact_store(store), crash_log=store)
    if report.segment is None:
        out.print(f"{store}: nothing to compact ({report.segments_before} segment(s), already compacted)", highlight=False)
        return
    kept = (f"; {report.kept_for_readers} old segment(s) stay until no reader has the store open"
            if report.kept_for_readers else "")
    out.print(f"{store}: {report.segments_before} segment(s) -> 1 ({report.videos} videos, {report.rows} frames rows, "
              f"{report.arrays} array groups), {_human_bytes(report.bytes_before)} -> {_human_bytes(report.bytes_after)}{kept}",
              highlight=False, soft_wrap=True)


@app.command(cls=alex_command("query"), epilog=epilog("query"))
def query(
    sql: str = typer.Argument(..., help="SQL over the views videos, frames, items (per video and encoder: status, steps, error) and encoders."),
    store: str = typer.Option(str(DEFAULT_STORE), "--store", help="Feature store folder, or an fsspec URL (s3://bucket/path).",
                              callback=lambda value: store_location(value)),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or parquet."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of standard output."),
    max_rows: int = typer.Option(100, "--max-rows", help="Rows shown by --format table."),
    attach: Optional[List[str]] = typer.Option(
        None, "--attach", metavar="NAME=FILE",
        help="Make a Parquet, CSV or JSON Lines file a view NAME beside the store's (repeatable), e.g. "
             "--attach preds=preds.parquet to join `alex predict` output with videos; still read-only."),
) -> None:
    """Run read-only SQL (DuckDB) over a store's views videos, frames, items, encoders (and attached files)."""
    from alex.store.attach import parse_attachments
    from alex.store.export import write_result
    from alex.store.reader import open_store

    if fmt not in ("table", "csv", "json", "parquet"):
        _usage_error(f"--format {fmt}: choose table, csv, json or parquet")

    def run() -> Any:
        import duckdb

        with open_store(store, attach=parse_attachments(attach)) as s:
            try:
                return s.sql(sql).arrow()
            except duckdb.Error as exc:  # the user's SQL: one line, exit 2, not a traceback
                raise UsageError(f"SQL: {str(exc).strip().splitlines()[0]}") from None

    table = _run(run)
    if hasattr(table, "read_all"):  # a RecordBatchReader
        table = table.read_all()
    if fmt == "table":
        _print_table(table, max_rows)
        return
    if fmt == "parquet" and output is None and sys.stdout.isatty():
        _usage_error("--format parquet writes binary: give --output FILE or redirect standard output")
    write_result(table, fmt, output)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        head = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value[:4])
        return f"[{head}{', …' if len(value) > 4 else ''}] ({len(value)})" if len(value) > 4 else f"[{head}]"
    if isinstance(value, float):
        return f"{value:.6g}"
    return "NULL" if value is None else str(value)


def _print_table(table: Any, max_rows: int) -> None:
    view = Table(show_lines=False)
    for name in table.column_names:
        view.add_column(name, overflow="fold")
    for row in table.slice(0, max_rows).to_pylist():
        view.add_row(*(Text(_cell(row[name])) for name in table.column_names))  # values as written, never markup
    out.print(view)
    if table.num_rows > max_rows:
        out.print(f"… {table.num_rows - max_rows} more rows (--max-rows, or --format csv)")


@app.command(cls=alex_command("search"), epilog=epilog("search"))
def search(
    text: str = typer.Argument(..., help="What to look for, in words."),
    store: str = typer.Option(str(DEFAULT_STORE), "--store", help="Feature store folder, or an fsspec URL (s3://bucket/path).",
                              callback=lambda value: store_location(value)),
    k: int = typer.Option(10, "-k", "--top-k", help="How many frames to return."),
    encoder: Optional[str] = typer.Option(None, "--encoder", "-e", help="Which text-capable encoder of the store (default: the only one)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    as_json: bool = flag("json", help="Print JSON lines instead of a table."),
) -> None:
    """Nearest frames to a text: the same CLIP model's text tower embeds it, DuckDB scores."""
    from alex.pipeline.search import search_text

    rows = _run(lambda: search_text(store, text, k=k, encoder=encoder, device=device))
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    view = Table(title=f"top {len(rows)} for {text!r}", title_justify="left")
    for column in ("rank", "video_id", "t_start", "t_end", "score"):
        view.add_column(column, justify="right" if column != "video_id" else "left")
    for rank, row in enumerate(rows, 1):
        view.add_row(str(rank), row["video_id"], f"{row['t_start']:.3f}", f"{row['t_end']:.3f}", f"{row['score']:.4f}")
    out.print(view)


def _quiet_transformers() -> None:
    """Command-line runs show alex's own progress; transformers' loading bars and notices are noise
    there. Said through the environment, which transformers reads when (and only if) it is imported,
    so that a command failing on usage never pays for importing it. A user's own settings win."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    transformers = sys.modules.get("transformers")
    if transformers is not None:  # imported already (alex used as a library, tests): tell it directly
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()


def _print_metrics(title: str, metrics: dict[str, Any]) -> None:
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    out.print(f"{title}: {shown}", highlight=False)
    for example in metrics.get("examples", [])[:2]:
        out.print(f"  {example['video_id']}: {example['generated']!r} (reference {example['reference']!r})", highlight=False, markup=False)


def _head_options() -> dict[str, type]:
    from alex.heads.registry import known_heads, options_class

    return {name: options_class(name) for name in known_heads()}


def _field_owners(classes: dict[str, type]) -> dict[str, list[str]]:
    from dataclasses import fields

    owners: dict[str, list[str]] = {}
    for head, cls in classes.items():
        for f in fields(cls):
            owners.setdefault(f.name, []).append(head)
    return owners


def _train(head: Optional[str] = None, **values: Any) -> None:
    from alex.cli_options import build, given
    from alex.heads.registry import DEFAULT_HEAD, options_class

    head = head or DEFAULT_HEAD
    options = _run(lambda: build(options_class(head), given(values), f"--head {head}", _field_owners(_head_options())))
    from alex.heads.training import train as run_train

    _quiet_transformers()
    metrics = _run(lambda: run_train(options, say=lambda line: out.print(line, highlight=False)),
                   crash_log=options.output, create=True,
                   kept=f"finished epochs (if any) are checkpointed in {Path(options.output) / 'checkpoints'}; "
                        "add --resume to the same command to continue from the last one")
    from alex.heads.distributed import is_main

    if not is_main():  # several training processes: rank 0 reports
        return
    for split_name in ("validation", "test"):
        _print_metrics(split_name, metrics[split_name])
    files = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in Path(options.output).iterdir()))
    out.print(f"run folder {options.output}: {files}", highlight=False)


def _evaluate(as_json: bool = False, **values: Any) -> None:
    from alex.cli_options import build, given
    from alex.heads.options import EvaluateOptions

    options = _run(lambda: build(EvaluateOptions, given(values), "alex evaluate"))
    from alex.heads.training import evaluate as run_evaluate

    _quiet_transformers()
    settings = {k: v for k, v in vars(options).items() if k not in ("run", "store", "labels")}
    result = _run(lambda: run_evaluate(options.run, options.store, options.labels, **settings), crash_log=options.run)
    if as_json:
        out.print_json(json.dumps(result))
        return
    _print_metrics(f"{options.split} ({result['videos']} videos)", result)


def _predict(**values: Any) -> None:
    from alex.cli_options import build, given
    from alex.heads.options import PredictOptions

    options = _run(lambda: build(PredictOptions, given(values), "alex predict"))
    from alex.heads.training import predict as run_predict

    _quiet_transformers()
    settings = {k: v for k, v in vars(options).items() if k not in ("run", "store", "output")}
    result = _run(lambda: run_predict(options.run, options.store, options.output, **settings), crash_log=options.run)
    skipped = ", ".join(f"{v} {k}" for k, v in result["skipped"].items() if v)
    rows = f" ({result['rows']} rows)" if result["rows"] != result["videos"] else ""
    out.print(f"predicted {result['videos']} video(s){rows} into {options.output}" + (f"; skipped {skipped}" if skipped else ""),
              highlight=False)


def _register_training_commands() -> None:
    """``train``, ``evaluate`` and ``predict``, their options derived from the options dataclasses."""
    import inspect

    from alex.cli_options import command, parameters
    from alex.heads.options import EvaluateOptions, PredictOptions
    from alex.heads.registry import DEFAULT_HEAD, known_heads

    heads = _head_options()
    head = inspect.Parameter("head", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str], default=typer.Option(
        None, "--head", show_default=False,
        help=f"Which head to train: {', '.join(known_heads())} (default: {DEFAULT_HEAD})."))
    app.command("train", cls=alex_command("train"), epilog=epilog("train"))(command("train", [head, *parameters(heads)], _train,
                                 "Train a head on cached features only (no video is decoded)."))
    as_json = inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                                default=flag("json", help="Print JSON."))
    app.command("evaluate", cls=alex_command("evaluate"), epilog=epilog("evaluate"))(command("evaluate", [*parameters({"evaluate": EvaluateOptions}), as_json],
                                    _evaluate,
                                    "Metrics of a trained head on one split of a labels file."))
    app.command("predict", cls=alex_command("predict"), epilog=epilog("predict"))(command("predict", parameters({"predict": PredictOptions}), _predict,
                                   "Predict every usable video of a store; the Parquet joins with `videos` on video_id."))


_register_training_commands()


@app.command(cls=alex_command("demo"), epilog=epilog("demo"))
def demo(
    output: Path = typer.Option(Path("alex-demo"), "--output", "-o", help="Folder for the demo's videos and store."),
    num_videos: int = typer.Option(300, "--num-videos", help="How many moving-digit videos to make (--videos is the old spelling)."),
) -> None:
    """The offline tour: labelled digit videos, extraction, a trained probe, SQL and search. No weights, no network."""
    from alex.demo import run_demo

    _quiet_transformers()
    _run(lambda: run_demo(output, num_videos=num_videos, say=lambda line: out.print(line, highlight=False, markup=False)))


def main() -> None:
    try:
        app()
    except Exception:  # outside any command (parsing, start-up): still a bug, still exit 3
        _report_crash(traceback.format_exc(), None)
        sys.exit(INTERNAL_ERROR)


if __name__ == "__main__":
    main()
