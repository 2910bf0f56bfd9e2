"""One clock for heads: seconds from the video's first stored frame, in the Dataset, actions files,
raw frames and predictions; each token of a clip at its own frame's time; one order index per step.
On an MPEG-TS file, whose container clock does not start at 0."""

import numpy as np
import pytest
import torch

import alex
from alex.heads.data import make_dataset, step_times
from alex.heads.labels import align_actions
from alex.pipeline.extract import ExtractOptions, extract
from tests.fixtures.videos import make_video

# 40 frames at 10 fps sampled at 4 fps: the latest frame at or before each target (0, 0.25, 0.5...
# after the first frame) is frame 0, 2, 5, 7, 10, 12, 15, 17, ...
PIXEL_TIMES = [0.0, 0.2, 0.5, 0.7, 1.0, 1.2, 1.5, 1.7, 2.0, 2.2, 2.5, 2.7, 3.0, 3.2, 3.5, 3.7]


@pytest.fixture(scope="module")
def late(tmp_path_factory):
    root = tmp_path_factory.mktemp("clock")
    video = make_video(root / "v" / "late.ts", num_frames=40, fps=10, container_format="mpegts", noise=True)
    report = extract(ExtractOptions(videos=root / "v", store=root / "s", fps=4.0, clip_frames=4, keep_tokens=True,
                                    workers=0, store_dtype="float32",
                                    encoders=["pixels", "clip:tiny@random", "tubelet:tiny@random", "languagebind:tiny@random"]))
    assert report.exit_code == 0
    return video, root / "s"


def test_the_container_clock_starts_late_and_heads_see_seconds_from_the_first_frame(late):
    _, store_path = late
    with alex.open_store(store_path) as store:
        ((first,),) = store.sql("SELECT min(t_start) FROM frames").fetchall()
        assert first > 0.05  # MPEG-TS: the container's clock does not start at 0
        item = make_dataset(store, ["late.ts"], ["pixels", "clip"])[0]
        np.testing.assert_allclose(item["timestamps"]["pixels"].numpy(), PIXEL_TIMES, atol=1e-4)
        np.testing.assert_allclose(item["timestamps"]["clip"].numpy(), PIXEL_TIMES, atol=1e-4)
        assert item["steps"]["pixels"].tolist() == list(range(16))
        np.testing.assert_allclose(step_times(store, "pixels", ["late.ts"])["late.ts"], PIXEL_TIMES, atol=1e-6)


def test_each_token_of_a_clip_carries_its_own_frames_time(late):
    _, store_path = late
    with alex.open_store(store_path) as store:
        item = make_dataset(store, ["late.ts"], ["tubelet", "languagebind"])[0]
    # tubelet: clips of 4 sampled frames, tubelet size 2 -> 2 temporal slices of 4 x 4 tokens per clip;
    # slice 0 starts at the clip's frame 0, slice 1 at its frame 2
    tubelet = item["timestamps"]["tubelet"].numpy().reshape(4, 2, 16)
    np.testing.assert_allclose(tubelet[:, :, 0], [[0.0, 0.5], [1.0, 1.5], [2.0, 2.5], [3.0, 3.5]], atol=1e-4)
    assert (tubelet == tubelet[:, :, :1]).all()  # the 16 tokens of a slice share its time
    assert item["steps"]["tubelet"].numpy().reshape(4, 32).tolist() == [[c] * 32 for c in range(4)]  # one order per clip
    # languagebind --keep-tokens: 4 frames x 17 tokens per clip, each frame at its own time
    languagebind = item["timestamps"]["languagebind"].numpy().reshape(4, 4, 17)
    np.testing.assert_allclose(languagebind[0, :, 0], [0.0, 0.2, 0.5, 0.7], atol=1e-4)
    np.testing.assert_allclose(languagebind[3, :, 0], [3.0, 3.2, 3.5, 3.7], atol=1e-4)


def test_actions_files_are_on_the_same_clock(late):
    """An actions file written in seconds from the first frame (10 rows a second, action = its time)
    gives each step the action at its own time, not at its container time."""
    from types import SimpleNamespace

    from alex.heads.labels import LabelTable
    from alex.heads.llm.head import HEAD

    _, store_path = late
    action_times = np.arange(0, 4.0, 0.1)
    values = action_times[:, None].astype(np.float32)
    assert align_actions(np.array([0.0, 0.2, 0.5]), action_times, values).ravel().tolist() == pytest.approx([0.0, 0.2, 0.5])
    targets = LabelTable(store_path / "actions.parquet", {"late.ts": "action"}, {"late.ts": "train"},
                         actions={"late.ts": (action_times, values)})
    model = SimpleNamespace(config=SimpleNamespace(task="action", inputs=["pixels"]))
    with alex.open_store(store_path) as store:
        _, (extra,) = HEAD.items(store, ["late.ts"], targets, model)
    np.testing.assert_allclose(extra["actions"].ravel(), PIXEL_TIMES, atol=1e-6)


def test_raw_frames_come_with_times_from_the_first_frame_and_match_the_cached_features(late):
    from alex.frames import read_frames
    from alex.pipeline.encoders import build_encoder, resolve_device
    from alex.pipeline.encoders.spec import EncoderSpec

    video, store_path = late
    with alex.open_store(store_path) as store:
        precision = store.encoders["clip"]["compute_dtype"]  # the features were computed in it
    encoder = build_encoder(EncoderSpec.parse("clip:tiny@random"), resolve_device("cpu"), compute_dtype=precision)
    frames, times = read_frames(video, encoder, fps=4.0)
    np.testing.assert_allclose(times, PIXEL_TIMES, atol=1e-6)
    with torch.no_grad():
        embedded = encoder.encode(torch.from_numpy(frames)).float().numpy()
    with alex.open_store(store_path) as store:
        cached = store.arrays("late.ts", "clip").embedding
    np.testing.assert_allclose(embedded, cached, rtol=1e-4, atol=1e-4)


def test_t5_orders_steps_not_tokens_and_never_clamps():
    from alex.errors import UsageError
    from alex.heads.t5.modeling_t5 import VisualEmbedding

    torch.manual_seed(0)
    visual = VisualEmbedding(["tubelet"], [8], 16, "none", max_steps=3).eval()
    features = torch.zeros(1, 6, 8)  # 3 steps of 2 tokens each, identical features
    masks = torch.ones(1, 6, dtype=torch.bool)
    steps = torch.tensor([[0, 0, 1, 1, 2, 2]])
    with torch.no_grad():
        x, _ = visual({"tubelet": features}, {"tubelet": torch.zeros(1, 6)}, {"tubelet": masks}, {"tubelet": steps})
    assert torch.equal(x[0, 0], x[0, 1]) and torch.equal(x[0, 4], x[0, 5]) and not torch.equal(x[0, 1], x[0, 2])
    with pytest.raises(UsageError, match="max_steps=4"):
        visual({"tubelet": torch.zeros(1, 4, 8)}, {"tubelet": torch.zeros(1, 4)}, {"tubelet": torch.ones(1, 4, dtype=torch.bool)},
               {"tubelet": torch.tensor([[0, 1, 2, 3]])})
