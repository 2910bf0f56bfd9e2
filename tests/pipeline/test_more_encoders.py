"""Issue 3 encoders: tubelet tokens (V-JEPA 2 / VideoMAE), audio log-mel windows, one timeline."""

import h5py
import numpy as np
import pytest
import torch

import alex
from alex.datasets.write import write_video
from alex.errors import EncoderSpecError
from alex.pipeline.encoders import build_encoder
from alex.pipeline.extract import ExtractOptions, extract
from alex.pipeline.steps import ClipSteps
from tests.fixtures.videos import frame_image, make_video

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)


def test_tubelet_tokens_equal_vjepa2_forward_on_the_same_pixels():
    from transformers import VJEPA2Model

    encoder = build_encoder("tubelet:tiny@random", clip_frames=8)
    reference = VJEPA2Model(encoder.hf_config).eval()
    reference.load_state_dict(encoder.model.state_dict())
    clip = torch.randint(0, 256, (2, 8, 32, 32, 3), dtype=torch.uint8)  # (B, T, H, W, C)
    out = encoder.encode(clip)
    pixels = (clip.permute(0, 1, 4, 2, 3).float() / 255 - IMAGENET_MEAN) / IMAGENET_STD  # (B, T, C, H, W)
    with torch.no_grad():
        expected = reference(pixel_values_videos=pixels, skip_predictor=True).last_hidden_state  # (B, N, D)
    assert out.arrays["tokens"].shape == (2, 4, 4, 4, 32)  # (B, T/tubelet, H/patch, W/patch, D)
    torch.testing.assert_close(out.arrays["tokens"].reshape(2, -1, 32), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.pooled, expected.mean(dim=1), rtol=0, atol=1e-5)


def test_tubelet_loads_a_local_videomae_folder(tmp_path):
    from transformers import VideoMAEConfig, VideoMAEModel

    config = VideoMAEConfig(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32,
                            num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(3)
    VideoMAEModel(config).save_pretrained(tmp_path / "videomae")
    encoder = build_encoder(f"tubelet:{tmp_path / 'videomae'}")
    assert encoder.clip_frames == 4  # VideoMAE's own clip length
    reference = VideoMAEModel.from_pretrained(tmp_path / "videomae").eval()
    clip = torch.randint(0, 256, (1, 4, 32, 32, 3), dtype=torch.uint8)
    pixels = (clip.permute(0, 1, 4, 2, 3).float() / 255 - IMAGENET_MEAN) / IMAGENET_STD
    with torch.no_grad():
        expected = reference(pixel_values=pixels).last_hidden_state
    torch.testing.assert_close(encoder.encode(clip).arrays["tokens"].reshape(1, -1, 32), expected, rtol=0, atol=1e-5)
    with pytest.raises(EncoderSpecError, match="tubelet size"):
        build_encoder(f"tubelet:{tmp_path / 'videomae'}", clip_frames=3)


def test_clips_window_the_whole_video_and_pad_the_last():
    def run(n, clip, stride):
        builder = ClipSteps(lambda rgb: rgb, clip, stride)
        steps = [s for i in range(n) for s in builder.feed(i, i * 0.5, i * 0.5 + 0.5, np.full(1, i))] + builder.finish()
        return [(int(s.data[0, 0]), int(s.data[-1, 0]), s.padded, s.t_start, s.t_end) for s in steps]

    assert run(10, 4, 4) == [(0, 3, 0, 0.0, 2.0), (4, 7, 0, 2.0, 4.0), (8, 9, 2, 4.0, 5.0)]
    assert run(8, 4, 2) == [(0, 3, 0, 0.0, 2.0), (2, 5, 0, 1.0, 3.0), (4, 7, 0, 2.0, 4.0)]
    assert run(3, 8, 8) == [(0, 2, 5, 0.0, 1.5)]  # a short video: one clip, padded with its last frame
    assert run(10, 2, 5) == [(0, 1, 0, 0.0, 1.0), (5, 6, 0, 2.5, 3.5)]  # stride longer than a clip


def test_tone_change_shows_in_the_right_audio_window(tmp_path):
    rate, seconds = 16000, 4.0
    t = np.arange(int(rate * seconds)) / rate
    signal = np.where(t < 2.0, np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 3000 * t)).astype(np.float32) * 0.3
    frames = (frame_image(i, 64, 48) for i in range(40))
    write_video(tmp_path / "v" / "tone.mp4", frames, fps=10, audio=signal, audio_rate=rate)
    make_video(tmp_path / "v" / "silent.mp4", num_frames=20)
    report = extract(ExtractOptions(videos=tmp_path / "v", store=tmp_path / "s", encoders=["audio", "pixels"], workers=0, fps=1.0))
    assert report.exit_code == 0
    with alex.open_store(tmp_path / "s") as s:
        logmel = s.arrays("tone.mp4", "audio")
        assert list(logmel.t_start) == [0.0, 1.0, 2.0, 3.0] and list(logmel.t_end) == [1.0, 2.0, 3.0, 4.0]
        peak_bin = logmel.arrays["logmel"].astype(np.float32).mean(axis=1).argmax(axis=1)  # per window
        assert peak_bin[0] == peak_bin[1] and peak_bin[2] == peak_bin[3] and peak_bin[2] > peak_bin[1] + 10
        # no audio track: has_audio false, no audio rows, not an error but a no_audio item
        assert s.sql("SELECT has_audio, status, no_audio FROM videos WHERE video_id = 'silent.mp4'").fetchall() == [
            (False, "ok", ["audio"])]
        assert s.sql("SELECT no_audio FROM videos WHERE video_id = 'tone.mp4'").fetchall() == [([],)]
        assert s.sql("SELECT count(*) FROM frames WHERE video_id = 'silent.mp4' AND encoder = 'audio'").fetchall() == [(0,)]
        assert s.arrays("silent.mp4", "audio").arrays["logmel"].shape[0] == 0


def test_one_timeline_joins_clips_frames_and_audio(tmp_path):
    make_video(tmp_path / "v" / "a.mp4", num_frames=60, fps=10, audio=True, noise=True)
    make_video(tmp_path / "v" / "short.mp4", num_frames=15, fps=10, noise=True, seed=2)
    extract(ExtractOptions(videos=tmp_path / "v", store=tmp_path / "s", workers=1, fps=2.0, clip_frames=4,
                           encoders=["clip:tiny@random", "tubelet:tiny@random", "audio:tiny"]))
    with alex.open_store(tmp_path / "s") as s:
        rows = s.sql(
            """
            SELECT t.index, t.t_start, t.t_end, t.padded, count(DISTINCT c.index) AS frames, count(DISTINCT a.index) AS windows
            FROM frames t
            JOIN frames c ON c.video_id = t.video_id AND c.encoder = 'clip' AND c.t_start >= t.t_start AND c.t_start < t.t_end
            LEFT JOIN frames a ON a.video_id = t.video_id AND a.encoder = 'audio' AND a.t_start >= t.t_start AND a.t_start < t.t_end
            WHERE t.video_id = 'a.mp4' AND t.encoder = 'tubelet' GROUP BY ALL ORDER BY t.index
            """
        ).fetchall()
        assert [(r[0], r[1], r[4], r[5]) for r in rows] == [(0, 0.0, 4, 4), (1, 2.0, 4, 4), (2, 4.0, 4, 4)]
        short = s.sql("SELECT padded FROM frames WHERE video_id = 'short.mp4' AND encoder = 'tubelet'").fetchall()
        assert short == [(1,)]  # 3 sampled frames in a 4-frame clip: one repeated, and the row says so
        path, group = s.array_location("a.mp4", "tubelet")
    with h5py.File(path) as f:
        tokens = f[group]["tokens"]
        assert tokens.shape == (3, 2, 4, 4, 32) and tokens.dtype == np.float16 and tokens.chunks == (1, 2, 4, 4, 32)


def test_views_are_seeded_augmentations_with_the_plain_frame_first(tmp_path):
    from alex.heads.data import make_dataset

    make_video(tmp_path / "v" / "a.mp4", num_frames=30, fps=10, noise=True)
    for store, workers, seed in [("s1", 0, 7), ("s2", 1, 7), ("s3", 0, 8)]:
        extract(ExtractOptions(videos=tmp_path / "v", store=tmp_path / store, encoders=["pixels:8", "clip:tiny@random"],
                               workers=workers, fps=2.0, views=3, seed=seed))
    plain = extract(ExtractOptions(videos=tmp_path / "v", store=tmp_path / "plain", encoders=["pixels:8"], workers=0, fps=2.0))
    assert plain.exit_code == 0
    stores = {name: alex.open_store(tmp_path / name) for name in ("s1", "s2", "s3", "plain")}
    a, b, c = (stores[n].arrays("a.mp4", "pixels").arrays for n in ("s1", "s2", "s3"))
    assert a["views"].shape == (6, 3, 192)  # (steps, views, D)
    assert np.array_equal(a["views"][:, 0], stores["plain"].arrays("a.mp4", "pixels").embedding)  # view 0: the plain frame
    assert np.array_equal(a["views"], b["views"])  # same seed, same views (in or out of worker processes)
    assert not np.array_equal(a["views"][:, 1:], c["views"][:, 1:])  # another seed, other views
    assert not np.array_equal(a["views"][:, 1], a["views"][:, 2])
    assert stores["s1"].encoders["pixels"]["sampling"]["views"] == 3
    train = make_dataset(stores["s1"], ["a.mp4"], ["pixels"], augment=True)
    evaluation = make_dataset(stores["s1"], ["a.mp4"], ["pixels"])
    torch.manual_seed(0)
    drawn = {tuple(train[0]["features"]["pixels"][0, :4].tolist()) for _ in range(12)}
    assert len(drawn) > 1  # training draws among the views
    assert np.allclose(evaluation[0]["features"]["pixels"].numpy(), a["embedding"].astype(np.float32))
