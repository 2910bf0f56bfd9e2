"""Hostile inputs (issue 15): forged frame sizes refused before allocation, FIFOs and devices
skipped without being opened, a 10 GB sparse file neither read nor held in memory, and file names
with quotes, newlines, leading dashes and non-UTF-8 bytes through every command, SQL included."""

import csv
import os
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

import alex
from tests.fixtures.videos import make_video

WEIRD = ["it's \"quoted\".mp4", "new\nline.mp4", "--flag; DROP TABLE videos.mp4", "tab\tand space .mp4"]


def alex_cli(*args, timeout=300):
    done = subprocess.run([sys.executable, "-m", "alex", *map(str, args)], capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def test_forged_sizes_special_files_and_a_sparse_giant_are_refused_fast(tmp_path):
    videos = tmp_path / "v"
    make_video(videos / "good.mp4", num_frames=6)
    # A YUV4MPEG2 header FFmpeg accepts (17000 x 10000, 255 MB a frame) on a 1 kB file named .mp4.
    (videos / "forged.mp4").write_bytes(b"YUV4MPEG2 W17000 H10000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + b"\x80" * 1000)
    os.mkfifo(videos / "fifo.mp4")  # opening it would block forever
    os.symlink("/dev/zero", videos / "zero.mp4")  # reading it would never end
    with open(videos / "sparse.mp4", "wb") as f:
        f.truncate(10 * 1024**3)  # 10 GB of holes: hashing it all would take tens of seconds
    started = time.monotonic()
    code, output = alex_cli("extract", "--videos", videos, "--store", tmp_path / "s", "-e", "pixels:8", "--workers", "1")
    seconds = time.monotonic() - started
    assert code == 1, output
    assert "skipped fifo.mp4: not a regular file (a FIFO)" in output
    assert "skipped zero.mp4: not a regular file (a character device)" in output
    with alex.open_store(tmp_path / "s") as s:
        rows = dict(s.sql("SELECT video_id, error FROM videos").fetchall())
    assert rows["good.mp4"] is None
    assert rows["forged.mp4"] == "frame size 17000x10000 is beyond alex's limit of 16384 pixels a side (refused before decoding)"
    assert rows["sparse.mp4"] == "not a readable video container (InvalidDataError: Invalid data found when processing input)"
    assert seconds < 20, seconds  # no full read of the 10 GB file (it took 35 s when it was hashed first)
    started = time.monotonic()
    code, output = alex_cli("extract", "--videos", videos, "--store", tmp_path / "s", "-e", "pixels:8")
    assert code == 1 and "2 failed in an earlier run" in output and "1 already up to date" in output, output
    assert time.monotonic() - started < 10  # the rerun does not hash the unchanged giant either


@pytest.mark.slow
def test_strange_file_names_work_in_every_command(tmp_path):
    videos = tmp_path / "v"
    names = WEIRD + [f"plain{i}.mp4" for i in range(8)]
    for i, name in enumerate(names):
        make_video(videos / name, num_frames=8, seed=i)
    raw = os.path.join(os.fsencode(videos), b"caf\xe9.mp4")  # not UTF-8: stored as caf\xe9.mp4
    make_video(os.fsdecode(raw), num_frames=8, seed=99)
    names.append("caf\\xe9.mp4")
    store = tmp_path / "s"
    code, output = alex_cli("extract", "--videos", videos, "--store", store, "-e", "pixels:8")
    assert code == 0, output
    code, output = alex_cli("extract", "--videos", videos, "--store", store, "-e", "pixels:8")
    assert code == 0 and f"{len(names)} already up to date" in output, output
    with alex.open_store(store) as s:
        assert sorted(v for (v,) in s.sql("SELECT video_id FROM videos").fetchall()) == sorted(names)
        for name in names:  # parameters and quoted literals alike
            assert s.sql("SELECT count(*) FROM frames WHERE video_id = $v", params={"v": name}).fetchall()[0][0] > 0
            literal = name.replace("'", "''")
            assert s.sql(f"SELECT count(*) FROM videos WHERE video_id = '{literal}'").fetchall()[0][0] == 1
    code, output = alex_cli("query", "SELECT video_id FROM videos WHERE video_id LIKE 'it''s%'", "--store", store, "-f", "csv")
    assert code == 0 and "it's" in output, output
    assert alex_cli("info", "--store", store)[0] == 0
    assert alex_cli("verify", store)[0] == 0
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video_id", "label"])
        writer.writerows([name, "ab"[i % 2]] for i, name in enumerate(names))
    code, output = alex_cli("train", "--store", store, "--labels", labels, "--inputs", "pixels", "-o", tmp_path / "run",
                            "--epochs", "1", "--device", "cpu", "--quiet")
    assert code == 0, output
    code, output = alex_cli("predict", tmp_path / "run", "--store", store, "-o", tmp_path / "p.parquet")
    assert code == 0, output
    assert sorted(pq.read_table(tmp_path / "p.parquet")["video_id"].to_pylist()) == sorted(names)
    assert alex_cli("compact", store)[0] == 0 and alex_cli("verify", store)[0] == 0
