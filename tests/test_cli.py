import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from alex.cli import app
from tests.conftest import make_bad_videos

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def store(clips, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "s"
    result = invoke("extract", "--videos", clips, "--store", root, "-e", "clip:tiny@random", "-e", "pixels",
                    "--fps", "2", "--workers", "0", "--quiet", "--profile")
    assert result.exit_code == 0, result.output
    assert "extracted 4 video(s), 42 frames" in result.output
    for stage in ("decode", "preprocess", "encode", "write", "wall"):
        assert stage in result.output
    return root


@pytest.mark.parametrize("command", [[], ["extract"], ["info"], ["query"], ["search"]])
def test_help_everywhere(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Usage" in result.output


def test_exit_codes(clips, tmp_path):
    bad = tmp_path / "bad"
    make_bad_videos(bad)
    result = invoke("extract", "--videos", bad, "--store", tmp_path / "s", "-e", "pixels", "--workers", "0")
    assert result.exit_code == 1
    assert "5 failed" in result.output and "empty.mp4: empty file" in result.output
    # Bad usage: exit 2 and nothing written.
    for args in (["-e", "nosuch"], ["-e", "pixels", "--dtype", "int4"], ["-e", "pixels", "--fps", "1", "--num-frames", "3"]):
        result = invoke("extract", "--videos", clips, "--store", tmp_path / "s2", *args)
        assert result.exit_code == 2, result.output
        assert "error:" in result.output
    assert not (tmp_path / "s2").exists()
    result = invoke("extract", "--videos", clips, "--store", tmp_path / "s3", "-e", "clip", "--workers", "0")
    assert result.exit_code == 2 and "alex demo" in result.output and not (tmp_path / "s3").exists()


def test_info(store):
    result = invoke("info", "--store", store)
    assert result.exit_code == 0
    assert "4 ok, 0 failed" in result.output and "clip:tiny@random" in result.output and "pixels:16" in result.output
    summary = json.loads(invoke("info", "--store", store, "--json").output)
    assert {e["name"]: e["rows"] for e in summary["encoders"]} == {"clip": 21, "pixels": 21}
    assert invoke("info", "--store", store.parent / "nope").exit_code == 2


def test_query_formats(store, tmp_path):
    sql = "SELECT video_id, count(*) AS n FROM frames WHERE encoder='clip' GROUP BY 1 ORDER BY 1"
    table = invoke("query", sql, "--store", store)
    assert table.exit_code == 0 and "sub/c.mp4" in table.output
    csv = invoke("query", sql, "--store", store, "--format", "csv")
    assert csv.output.splitlines() == ['"video_id","n"', '"a.mp4",6', '"b.mp4",5', '"sub/c.mp4",4', '"vfr.mp4",6']
    rows = json.loads(invoke("query", sql, "--store", store, "-f", "json").output)
    assert rows[0] == {"video_id": "a.mp4", "n": 6}
    out = tmp_path / "r.parquet"
    assert invoke("query", "SELECT * FROM frames", "--store", store, "-f", "parquet", "-o", out).exit_code == 0
    assert pq.read_table(out).num_rows == 42
    embedding_csv = invoke("query", "SELECT embedding FROM frames LIMIT 1", "--store", store, "-f", "csv").output
    assert len(json.loads(json.loads(embedding_csv.splitlines()[1]))) in (32, 768)
    refused = invoke("query", "DELETE FROM videos", "--store", store)
    assert refused.exit_code == 2 and "read-only" in refused.output


def test_search(store):
    result = invoke("search", "a grey square", "--store", store, "-k", "3", "--json")
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.output.splitlines()]
    assert len(hits) == 3 and hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    assert {"video_id", "t_start", "t_end", "score"} <= hits[0].keys()
    table = invoke("search", "a grey square", "--store", store, "-k", "2")
    assert table.exit_code == 0 and "rank" in table.output
    wrong = invoke("search", "x", "--store", store, "--encoder", "pixels")
    assert wrong.exit_code == 2 and "cannot embed text" in wrong.output


def test_every_encoder_family_through_alex_extract(tmp_path):
    from tests.fixtures.videos import make_video

    make_video(tmp_path / "v" / "talk.mp4", num_frames=40, fps=10, audio=True, noise=True)
    make_video(tmp_path / "v" / "short.mp4", num_frames=8, fps=10, noise=True, seed=1)
    result = invoke("extract", "--videos", tmp_path / "v", "--store", tmp_path / "s", "--workers", "1", "--fps", "4",
                    "--clip-frames", "4", "--keep-tokens", "-e", "clip:tiny@random", "-e", "pixels",
                    "-e", "tubelet:tiny@random", "-e", "languagebind:tiny@random", "-e", "audio:tiny")
    assert result.exit_code == 0, result.output
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    join = readme.split("```sql\n")[1].split("```")[0]
    rows = json.loads(invoke("query", join, "--store", tmp_path / "s", "-f", "json").output)
    talk = [r for r in rows if r["video_id"] == "talk.mp4"]
    assert [(r["clip"], r["clip_frames"], r["audio_windows"]) for r in talk] == [(0, 4, 4), (1, 4, 4), (2, 4, 4), (3, 4, 4)]
    short = [r for r in rows if r["video_id"] == "short.mp4"]
    assert [(r["clip"], r["padded"]) for r in short] == [(0, 1)]  # 0.8 s at 4 fps: 3 frames in a 4-frame clip
    counts = dict(tuple(r.values()) for r in json.loads(invoke(
        "query", "SELECT encoder, count(*) AS n FROM frames WHERE video_id = 'short.mp4' GROUP BY 1", "--store", tmp_path / "s",
        "-f", "json").output))
    assert counts == {"clip": 3, "pixels": 3, "tubelet": 1, "languagebind": 1}  # no audio track: no audio rows


def test_an_internal_error_in_extract_exits_3_not_1(clips, tmp_path, monkeypatch):
    """A bug is not 'some videos failed': exit 3, the traceback printed and kept in the store's log."""
    import alex.pipeline.extract

    def broken(options):
        (tmp_path / "s").mkdir()
        raise KeyError("a bug inside alex")

    monkeypatch.setattr(alex.pipeline.extract, "extract", broken)
    result = invoke("extract", "--videos", clips, "--store", tmp_path / "s", "-e", "pixels", "--workers", "0")
    assert result.exit_code == 3 and "KeyError: 'a bug inside alex'" in result.output and "internal error" in result.output
    assert "KeyError" in (tmp_path / "s" / "alex-errors.log").read_text()


def test_bad_sql_is_one_line_and_exit_2(store):
    result = invoke("query", "SELEC video_id FROM videos", "--store", store)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: SQL:") and "SELEC" in lines[0]
    missing = invoke("query", "SELECT nothing FROM videos", "--store", store)
    assert missing.exit_code == 2 and "nothing" in missing.output and "Traceback" not in missing.output


def test_messages_print_user_text_as_written_not_as_markup(tmp_path, clips):
    result = invoke("extract", "--videos", clips, "--store", tmp_path / "s", "-e", "audio:abc")
    assert result.exit_code == 2 and "audio:abc:" in result.output  # not an emoji
    named = invoke("extract", "--videos", tmp_path / "[bold]missing", "--store", tmp_path / "s", "-e", "pixels")
    assert named.exit_code == 2 and "[bold]missing" in named.output
    assert not (tmp_path / "s").exists()
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "[red]bad:abc:.mp4").write_bytes(b"")
    failed = invoke("extract", "--videos", videos, "--store", tmp_path / "s2", "-e", "pixels", "--workers", "0")
    assert failed.exit_code == 1 and "[red]bad:abc:.mp4: empty file" in failed.output
    info = invoke("info", "--store", tmp_path / "s2")
    assert "[red]bad:abc:.mp4: empty file" in info.output
    # Ordinary output too: a store path with brackets in the closing line and in info's title.
    ok = invoke("extract", "--videos", clips, "--store", tmp_path / "st[bold]b:abc:", "-e", "pixels", "--workers", "0")
    assert ok.exit_code == 0 and f"into {tmp_path / 'st[bold]b:abc:'} in" in ok.output, ok.output
    assert str(tmp_path / "st[bold]b:abc:") in invoke("info", "--store", tmp_path / "st[bold]b:abc:").output


def test_an_empty_videos_folder_is_a_usage_error_and_writes_nothing(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "notes.txt").write_text("not a video")
    result = invoke("extract", "--videos", tmp_path / "videos", "--store", tmp_path / "s", "-e", "pixels")
    assert result.exit_code == 2 and "no video files" in result.output
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("spec, says, never", [
    ("tubelet:facebook/vjepa2-vitl-fpc64-256", "local folder", "clip:ViT-B-32@/path"),
    ("perceiver-mm", "local folder", "clip:ViT-B-32@/path"),
    ("clip", "clip:ViT-B-32@/path/to/open_clip_pytorch_model.bin", "local folder"),
])
def test_the_offline_hint_fits_the_model_asked_for(tmp_path, clips, spec, says, never):
    result = invoke("extract", "--videos", clips, "--store", tmp_path / "s", "-e", spec)
    assert result.exit_code == 2 and says in result.output and never not in result.output


def test_an_unknown_clip_architecture_is_named_as_such(tmp_path, clips):
    result = invoke("extract", "--videos", clips, "--store", tmp_path / "s", "-e", "clip:ViT-B-33")
    assert result.exit_code == 2 and "open_clip has no model 'ViT-B-33'" in result.output and "ViT-B-32" in result.output
    assert "published weights" not in result.output


@pytest.mark.slow
def test_ctrl_c_exits_130_and_says_what_was_kept(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tests.fixtures.videos import make_video

    for i in range(40):  # the run must outlast the wait for its first segment: 2.5 s of extraction, 10 ms polls
        make_video(tmp_path / "videos" / f"v{i:02d}.mp4", num_frames=50, fps=25, seed=i)
    store = tmp_path / "s"
    command = [sys.executable, "-m", "alex", "extract", "--videos", str(tmp_path / "videos"), "--store", str(store),
               "-e", "pixels", "--fps", "25", "--workers", "0", "--shard-size", "2", "--batch-size", "8", "-q"]
    # SIGINT as a terminal delivers it, even when this test runs under a shell that started it in the
    # background (which leaves SIGINT ignored, and Python then never raises KeyboardInterrupt).
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not any((store / "segments").glob("*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)  # wait until a first segment is committed
    assert process.poll() is None, "the run ended before its first segment was seen; give it more work"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stdout + stderr
    assert "interrupted: the videos finished so far are committed in" in stderr and "Traceback" not in stderr
    info = invoke("info", "--store", store)
    assert info.exit_code == 0 and "0 failed" in info.output  # the store opens; nothing half-written shows
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already up to date" in again.stdout
    assert invoke("info", "--store", store).output.count("40 ok") == 1


def test_query_attach_joins_a_users_files_and_stays_read_only(store, tmp_path):
    import pyarrow as pa

    pq.write_table(pa.table({"video_id": ["a.mp4", "b.mp4"], "label": ["cat", "dog"]}), tmp_path / "preds.parquet")
    (tmp_path / "notes.csv").write_text("video_id,note\nsub/c.mp4,blurry\n")
    (tmp_path / "extra.jsonl").write_text('{"video_id": "vfr.mp4", "score": 0.5}\n')
    sql = ("SELECT v.video_id, p.label, n.note, e.score FROM videos v LEFT JOIN preds p USING (video_id) "
           "LEFT JOIN notes n USING (video_id) LEFT JOIN extra e USING (video_id) ORDER BY 1")
    result = invoke("query", sql, "--store", store, "--attach", f"preds={tmp_path / 'preds.parquet'}",
                    "--attach", f"notes={tmp_path / 'notes.csv'}", "--attach", f"extra={tmp_path / 'extra.jsonl'}", "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"video_id": "a.mp4", "label": "cat", "note": None, "score": None},
        {"video_id": "b.mp4", "label": "dog", "note": None, "score": None},
        {"video_id": "sub/c.mp4", "label": None, "note": "blurry", "score": None},
        {"video_id": "vfr.mp4", "label": None, "note": None, "score": 0.5},
    ]
    attach = ["--attach", f"preds={tmp_path / 'preds.parquet'}"]
    for sql, says in (("DROP VIEW preds", "read-only"), ("COPY preds TO 'x.csv'", "read-only"),
                      (f"SELECT * FROM read_csv('{tmp_path / 'notes.csv'}')", "SQL:")):  # only attached files are readable
        refused = invoke("query", sql, "--store", store, *attach)
        assert refused.exit_code == 2 and says in refused.output and len(refused.output.strip().splitlines()) == 1, refused.output
    assert not (Path.cwd() / "x.csv").exists()
    for bad, says in ((f"videos={tmp_path / 'preds.parquet'}", "is a view of the store"),
                      (f"preds={tmp_path / 'nope.parquet'}", "no such file"),
                      (f"_items={tmp_path / 'preds.parquet'}", "names starting with _ are kept"),
                      (f"preds={tmp_path / 'notes.txt'}", "Parquet, CSV or JSON Lines"),
                      ("1bad=x.csv", "NAME=FILE"), ("preds", "NAME=FILE")):
        refused = invoke("query", "SELECT 1", "--store", store, "--attach", bad)
        assert refused.exit_code == 2 and says in refused.output, (bad, refused.output)


def _commands():
    import typer

    group = typer.main.get_command(app)
    return {name: group.get_command(None, name) for name in group.list_commands(None)}


STORE_COMMANDS = ("extract", "info", "query", "search", "train", "evaluate", "predict")


def test_one_name_for_one_thing_across_commands():
    commands = _commands()
    for name in STORE_COMMANDS:
        flags = {opt for p in commands[name].params for opt in p.opts}
        assert "--store" in flags and "--features" not in flags, name
    split = {name: next((p for p in c.params if "--split" in p.opts), None) for name, c in commands.items()}
    assert split["evaluate"] is not None and split["train"] is None  # --split is a split name; train has --split-fractions
    assert any("--split-fractions" in p.opts for p in commands["train"].params)
    videos = {name: next((p for p in c.params if "--videos" in p.opts), None) for name, c in commands.items()}
    assert set(n for n, p in videos.items() if p is not None) == {"extract"}  # a folder; demo's count is --num-videos


def test_every_option_has_help_and_every_flag_a_no_form():
    from click import Option

    for name, command in _commands().items():
        for param in command.params:
            assert (param.help or "").strip(), f"alex {name} {param.opts[0]} has no help"
            if isinstance(param, Option) and param.is_flag and param.opts != ["--version"]:
                assert param.secondary_opts and param.secondary_opts[0].startswith("--no-"), f"alex {name} {param.opts}"
    help_text = invoke("extract", "--help").output
    assert "--no-profile" in help_text and "<bool>" not in help_text


def test_old_spellings_are_accepted_with_a_note(store, tmp_path):
    from alex.cli_renames import rewrite_args

    notes = []
    assert rewrite_args("train", ["--features", "s", "--split=0.5,0.5,0", "--labels", "l"], notes.append) == \
        ["--store", "s", "--split-fractions=0.5,0.5,0", "--labels", "l"]
    assert rewrite_args("info", ["--json", "s/"], notes.append) == ["--json", "--store", "s/"]
    assert rewrite_args("info", ["--store", "s/"], notes.append) == ["--store", "s/"]
    assert rewrite_args("evaluate", ["run", "--split", "test"], notes.append) == ["run", "--split", "test"]
    assert len(notes) == 3 and "--features is now --store" in notes[0]
    old = invoke("info", store)
    assert old.exit_code == 0 and "4 ok" in old.output and "note: alex info STORE is now alex info --store STORE" in old.output
    result = invoke("train", "--features", store, "--labels", tmp_path / "none.csv", "-o", tmp_path / "r", "--split", "0.5,0.5")
    assert result.exit_code == 2 and "--features is now --store" in result.output and "--split-fractions '0.5,0.5'" in result.output


def test_help_of_the_main_commands_ends_with_examples_that_parse():
    import shlex

    from alex.cli_examples import EXAMPLES
    from alex.heads.registry import known_heads

    commands = _commands()
    for name in ("extract", "info", "query", "search", "train", "evaluate", "predict", "demo"):
        assert "Examples:" in invoke(name, "--help").output, name
        for _, line in EXAMPLES[name]:
            words = shlex.split(line)
            assert words[:2] == ["alex", name]
            commands[name].make_context(name, words[2:])  # parses: known options, right types, required ones given
    head_help = next(p.help for p in commands["train"].params if "--head" in p.opts)
    assert all(head in head_help for head in known_heads()) and "llm" in head_help


@pytest.mark.slow
def test_demo_twice_writes_the_same_videos_and_extracts_nothing(tmp_path):
    first = invoke("demo", "--output", tmp_path / "d", "--num-videos", "40")
    assert first.exit_code == 0, first.output
    assert re.search(r"stopped early after epoch \d+ of 30: validation accuracy has not improved|trained 30 epochs; best",
                     first.output), first.output  # the demo says how its training ended
    assert invoke("demo", "--output", tmp_path / "small", "--num-videos", "3").exit_code == 2
    videos = sorted((tmp_path / "d" / "videos").iterdir())
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in videos}
    again = invoke("demo", "--output", tmp_path / "d", "--num-videos", "40")
    assert again.exit_code == 0, again.output
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted((tmp_path / "d" / "videos").iterdir())} == before
    assert "0 videos, 0 frames encoded, 40 already up to date" in again.output
    fresh = invoke("demo", "--output", tmp_path / "e", "--num-videos", "40")  # another folder: the same bytes
    assert fresh.exit_code == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "e" / "videos").iterdir()} == {k: v[0] for k, v in before.items()}


def test_a_set_key_that_is_an_option_is_a_usage_error(tmp_path):
    """--set hidden_size=16 crashed (exit 3, 'got multiple values for keyword argument')."""
    result = invoke("train", "--store", tmp_path, "--labels", tmp_path / "l.csv", "-o", tmp_path / "r", "--set", "hidden_size=16")
    assert result.exit_code == 2 and "give it as --hidden-size 16" in result.output, result.output


def test_an_unknown_device_is_a_usage_error_everywhere(store, tmp_path, clips):
    """--device tpu was a traceback with exit 3 (and left files in the run folder)."""
    for args in (["extract", "--videos", clips, "--store", tmp_path / "s", "-e", "pixels"],
                 ["train", "--store", store, "--labels", tmp_path / "l.csv", "-o", tmp_path / "r", "--inputs", "pixels"],
                 ["evaluate", tmp_path / "r", "--store", store, "--labels", tmp_path / "l.csv"],
                 ["predict", tmp_path / "r", "--store", store, "-o", tmp_path / "p.parquet"],
                 ["search", "a cat", "--store", store]):
        result = invoke(*args, "--device", "tpu")
        assert result.exit_code == 2 and "--device tpu: choose auto, cpu, cuda, cuda:N or mps" in result.output, (args, result.output)
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()
