import io

from rich.console import Console

from alex.pipeline.progress import ExtractProgress


def test_progress_bar_shows_videos_rate_and_eta_on_a_terminal():
    buffer = io.StringIO()
    progress = ExtractProgress(3, console=Console(file=buffer, force_terminal=True, width=120))
    progress.add_frames(10)
    progress.video_done()
    progress.close()
    text = buffer.getvalue()
    assert progress.enabled and "1/3" in text and "videos" in text and "frames/s" in text


def test_progress_is_quiet_off_a_terminal_or_when_asked():
    for console, quiet in [(Console(file=io.StringIO(), force_terminal=False), False),
                           (Console(file=io.StringIO(), force_terminal=True), True)]:
        progress = ExtractProgress(3, quiet=quiet, console=console)
        progress.add_frames(5)
        progress.video_done()
        progress.close()
        assert not progress.enabled and console.file.getvalue() == ""
