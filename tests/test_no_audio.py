"""Videos without an audio track, end to end through the command line: their audio encoders get an
explicit ``no_audio`` state (not ``ok`` with 0 steps, not a failure), shown by the ``videos`` view
and ``alex info``; extraction exits 0 and a rerun extracts nothing; training with an audio input
skips them and counts them; training on audio alone when every labelled video is silent is a usage
error that names the reason.

What the store should say is checked against PyAV's own view of each file (does the container have
an audio stream), not against alex's ``has_audio`` column."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import alex
from alex.cli import app
from alex.heads.data import usable_videos
from tests.fixtures.videos import make_video

LOUD = [f"loud{i}.mp4" for i in range(6)]  # two per split
SILENT = ["mute0.mp4", "mute1.mp4"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def containers_without_audio(folder: Path) -> set[str]:
    """The videos whose container has no audio stream, as PyAV sees them."""
    silent = set()
    for path in sorted(folder.glob("*.mp4")):
        with av.open(str(path)) as container:
            if not container.streams.audio:
                silent.add(path.name)
    return silent


def write_labels(path: Path, rows: list[tuple[str, int, str]]) -> Path:
    path.write_text("video_id,label,split\n" + "".join(f"{v},{label},{split}\n" for v, label, split in rows))
    return path


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """Six 1-second videos with an audio track and two without, extracted with pixels and audio."""
    root = tmp_path_factory.mktemp("no_audio")
    videos = root / "videos"
    for i, name in enumerate(LOUD):
        make_video(videos / name, num_frames=10, fps=10, audio=True, noise=True, seed=i)
    for i, name in enumerate(SILENT):
        make_video(videos / name, num_frames=10, fps=10, noise=True, seed=10 + i)
    store = root / "store"
    result = invoke("extract", "--videos", videos, "--store", store, "-e", "pixels", "-e", "audio:tiny",
                    "--fps", "2", "--workers", "0", "-q")
    return root, videos, store, result


def test_silent_videos_are_no_audio_in_the_videos_view_and_info_and_not_a_failure(extracted):
    root, videos, store, result = extracted
    assert result.exit_code == 0, result.output  # no audio is not a failure
    silent = containers_without_audio(videos)
    assert silent == set(SILENT)  # the fixture made what it meant to
    rows = json.loads(invoke("query", "SELECT video_id, status, no_audio FROM videos ORDER BY video_id",
                             "--store", store, "-f", "json").output)
    assert {r["video_id"]: r["no_audio"] for r in rows} == {v: (["audio"] if v in silent else []) for v in LOUD + SILENT}
    assert {r["status"] for r in rows} == {"ok"}
    items = json.loads(invoke("query", "SELECT video_id, encoder, status, steps FROM items ORDER BY ALL",
                              "--store", store, "-f", "json").output)  # per-encoder step counts
    assert {(r["video_id"], r["encoder"]): (r["status"], r["steps"]) for r in items} == {
        **{(v, "pixels"): ("ok", 2) for v in LOUD + SILENT},  # 1-s videos at --fps 2
        **{(v, "audio"): ("no_audio", 0) if v in silent else ("ok", 2) for v in LOUD + SILENT}}
    queried = json.loads(invoke("query", "SELECT video_id FROM videos WHERE list_contains(no_audio, 'audio') ORDER BY 1",
                                "--store", store, "-f", "json").output)
    assert [r["video_id"] for r in queried] == sorted(silent)

    info = invoke("info", "--store", store, "--json")
    assert info.exit_code == 0, info.output
    summary = json.loads(info.output)
    assert summary["no_audio"] == [[v, "audio"] for v in sorted(silent)]
    assert summary["videos_ok"] == 8 and summary["videos_failed"] == 0 and summary["failed_items"] == []
    encoders = {e["name"]: e for e in summary["encoders"]}
    assert (encoders["audio"]["videos"], encoders["audio"]["no_audio"]) == (6, 2)
    assert (encoders["pixels"]["videos"], encoders["pixels"]["no_audio"]) == (8, 0)
    shown = invoke("info", "--store", store).output
    assert f"no audio for encoder audio: 2 video(s) without an audio track ({', '.join(sorted(silent))})" in shown
    assert "2 video(s) without an audio track" in result.output  # extraction said so too

    # Done: a rerun extracts nothing and writes no segment; --retry-errors has nothing to retry either.
    for extra in ([], ["--retry-errors"]):
        again = invoke("extract", "--videos", videos, "--store", store, "-e", "pixels", "-e", "audio:tiny",
                       "--fps", "2", "--workers", "0", "-q", *extra)
        assert again.exit_code == 0, again.output
        assert "extracted 0 video(s)" in again.output and "8 already up to date" in again.output
    assert json.loads(invoke("info", "--store", store, "--json").output)["segments"] == summary["segments"]


@pytest.mark.slow
def test_training_with_audio_skips_and_counts_silent_videos(extracted, tmp_path):
    root, videos, store, _ = extracted
    splits = ["train", "validation", "test"]
    rows = [(v, i % 2, splits[i // 2]) for i, v in enumerate(LOUD)] + [(v, 1, "train") for v in SILENT]
    labels = write_labels(tmp_path / "labels.csv", rows)
    run = tmp_path / "run"
    result = invoke("train", "--store", store, "--labels", labels, "--head", "probe", "--inputs", "pixels,audio",
                    "--output", run, "--epochs", "1", "--hidden-size", "16", "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    assert "2 no audio" in result.output  # the "skipped: ..." line
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["skipped"]["no audio"] == 2 and metrics["skipped"]["missing features"] == 0
    assert metrics["videos"] == {"train": 2, "validation": 2, "test": 2}


def test_audio_alone_on_silent_videos_is_a_usage_error_naming_no_audio(extracted, tmp_path):
    root, videos, store, _ = extracted
    labels = write_labels(tmp_path / "silent.csv", [("mute0.mp4", 0, "train"), ("mute1.mp4", 1, "train")])
    result = invoke("train", "--store", store, "--labels", labels, "--head", "probe", "--inputs", "audio",
                    "--output", tmp_path / "run", "--epochs", "1", "--device", "cpu", "-q")
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "2 no audio" in message and "no audio track" in message and "--audio-dir" in message
    assert "'split' column" not in message  # the split column is not to blame
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_older_store_with_silent_videos_as_ok_zero_step_items_opens_and_skips_them(extracted, tmp_path):
    """Stores written before the no_audio state hold a silent video's audio item as ok with 0 steps:
    they open, and such a video is skipped (missing features) instead of breaking a batch."""
    import shutil

    _, _, store, _ = extracted
    old = tmp_path / "old"
    shutil.copytree(store, old)
    for items in old.glob("segments/*/items.parquet"):
        table = pq.read_table(items)
        status = [("ok" if s == "no_audio" else s) for s in table.column("status").to_pylist()]
        pq.write_table(table.set_column(table.schema.get_field_index("status"), "status", pa.array(status)), items)
    with alex.open_store(old) as s:
        assert s.sql("SELECT count(*) FROM videos WHERE len(no_audio) > 0").fetchall() == [(0,)]
        usable, skipped = usable_videos(s, ["pixels", "audio"])
    assert usable == sorted(LOUD) and skipped == {"status error": 0, "missing features": 2}
