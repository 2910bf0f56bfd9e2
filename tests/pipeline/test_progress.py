import io
import os
import re
import subprocess
import sys

import pytest
from rich.console import Console

import alex
from alex.pipeline.progress import ExtractProgress
from alex.status import DEFAULT_INTERVAL_S, INTERVAL_ENV, format_duration, status_interval


def test_progress_bar_shows_videos_rate_and_eta_on_a_terminal():
    buffer = io.StringIO()
    progress = ExtractProgress(3, console=Console(file=buffer, force_terminal=True, width=120))
    progress.add_frames(10)
    progress.video_done()
    progress.close()
    text = buffer.getvalue()
    assert progress.enabled and "1/3" in text and "videos" in text and "frames/s" in text
    assert "extract: 1/3 videos" not in text  # a terminal gets the bar, not status lines


def test_quiet_silences_the_bar_and_the_status_lines():
    for console in [Console(file=io.StringIO(), force_terminal=False), Console(file=io.StringIO(), force_terminal=True)]:
        progress = ExtractProgress(3, quiet=True, console=console, interval=0)
        progress.add_frames(5)
        progress.video_done()
        progress.close()
        assert not progress.enabled and console.file.getvalue() == ""


def test_off_a_terminal_one_status_line_per_interval_and_a_last_one():
    console = Console(file=io.StringIO(), force_terminal=False)
    progress = ExtractProgress(4, console=console, interval=0)  # a line at every update
    progress.add_frames(10)
    progress.video_done()
    progress.add_frames(1234)
    progress.close()
    lines = console.file.getvalue().splitlines()
    assert lines[0].startswith("extract: 0/4 videos, 10 frames, ") and "frames/s, ETA ?" in lines[0]
    assert re.fullmatch(r"extract: 1/4 videos, 10 frames, [\d,.]+ frames/s, ETA \d+s", lines[1])
    assert lines[2].startswith("extract: 1/4 videos, 1,244 frames, ")
    assert lines[-1].startswith("extract: stopped at 1/4 videos, 1,244 frames in ")  # closed before the end
    assert len(lines) == 4

    console = Console(file=io.StringIO(), force_terminal=False)
    progress = ExtractProgress(2, console=console, interval=3600)  # no line is due within the test
    for _ in range(2):
        progress.add_frames(3)
        progress.video_done()
    progress.close()
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("extract: finished 2/2 videos, 6 frames in ")


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert status_interval() == DEFAULT_INTERVAL_S == 30
    monkeypatch.setenv(INTERVAL_ENV, "2.5")
    assert status_interval() == 2.5 and status_interval(7) == 7
    monkeypatch.setenv(INTERVAL_ENV, "soon")
    with pytest.warns(UserWarning, match="ALEX_PROGRESS_INTERVAL='soon' is not a number"):
        assert status_interval() == DEFAULT_INTERVAL_S
    assert [format_duration(s) for s in (0, 45, 190, 7500)] == ["0s", "45s", "3m10s", "2h05m"]


@pytest.mark.slow
def test_alex_extract_into_a_log_file_prints_status_lines(tmp_path):
    from tests.fixtures.videos import make_video

    for i in range(3):
        make_video(tmp_path / "videos" / f"v{i}.mp4", num_frames=20, fps=10, seed=i)
    store = tmp_path / "store"
    log = tmp_path / "extract.log"
    command = [sys.executable, "-m", "alex", "extract", "--videos", str(tmp_path / "videos"),
               "-e", "pixels", "--fps", "5", "--workers", "0", "--store"]
    with open(log, "w") as stderr:  # a file, as under nohup or Slurm: not a terminal
        done = subprocess.run(command + [str(store)], stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=120,
                              env={**os.environ, "ALEX_PROGRESS_INTERVAL": "0"})
    assert done.returncode == 0, log.read_text()
    lines = [line for line in log.read_text().splitlines() if line.startswith("extract: ")]
    with alex.open_store(store) as s:
        (frames,) = s.sql("SELECT count(*) FROM frames").fetchall()[0]
    assert frames > 0
    for count in (1, 2, 3):
        assert any(re.match(rf"extract: {count}/3 videos, [\d,]+ frames, [\d,.]+ frames/s, ETA ", line) for line in lines), lines
    assert re.fullmatch(rf"extract: finished 3/3 videos, {frames:,} frames in \d+s \([\d,.]+ frames/s\)", lines[-1])
    assert "\x1b[" not in log.read_text()  # no bar, no colour codes in a log file

    quiet = subprocess.run(command + [str(tmp_path / "quiet"), "--quiet"], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "ALEX_PROGRESS_INTERVAL": "0"})
    assert quiet.returncode == 0 and "extract: " not in quiet.stderr
