import pytest

from alex.errors import UsageError
from alex.pipeline.sampling import Sampling, even_targets, fps_targets, sample_stream


def frames(times, duration=0.1):
    return [(t, duration, f"frame@{t}") for t in times]


def resolve(times, make_targets, duration=0.1):
    return [(s.index, s.t_start, s.t_end, s.payload) for s in sample_stream(frames(times, duration), make_targets)]


def test_fps_takes_latest_frame_at_or_before_each_target():
    times = [0.0, 0.1, 0.15, 0.9, 1.0, 1.37, 2.5, 2.6]
    out = resolve(times, lambda first: fps_targets(first, 2.0))
    # targets 0, .5, 1, 1.5, 2, 2.5 (3.0 is past the last frame at 2.6)
    assert [s[1] for s in out] == [0.0, 0.15, 1.0, 1.37, 1.37, 2.5]
    assert [s[0] for s in out] == list(range(6))
    # t_end is the next frame's time; the last frame ends after its own duration
    assert [s[2] for s in out] == [0.1, 0.9, 1.37, 2.5, 2.5, 2.6]


def test_targets_start_at_first_frame_time_not_zero():
    out = resolve([5.0, 5.5, 6.0, 6.5], lambda first: fps_targets(first, 1.0))
    assert [s[1] for s in out] == [5.0, 6.0]


def test_last_frame_serves_a_target_equal_to_its_time():
    out = resolve([0.0, 0.5, 1.0], lambda first: fps_targets(first, 1.0))
    assert [s[1] for s in out] == [0.0, 1.0]
    assert out[-1][2] == pytest.approx(1.1)


def test_fps_above_video_rate_repeats_frames():
    out = resolve([0.0, 1.0], lambda first: fps_targets(first, 4.0))
    assert [s[1] for s in out] == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_num_frames_spreads_from_first_to_last():
    times = [i / 10 for i in range(31)]  # 0 .. 3.0
    out = resolve(times, lambda first: even_targets(0.0, 3.0, 4))
    assert [s[1] for s in out] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert even_targets(2.0, 9.0, 1) == [2.0]


def test_out_of_order_or_repeated_times_are_not_latest():
    out = resolve([0.0, 1.0, 1.0, 0.5, 2.0], lambda first: fps_targets(first, 1.0))
    assert [s[1] for s in out] == [0.0, 1.0, 2.0]
    assert out[1][3] == "frame@1.0"


def test_streaming_holds_only_one_frame():
    held = []

    def gen():
        for i in range(10_000):
            held.append(i)
            yield (i / 30, 1 / 30, i)

    samples = sample_stream(gen(), lambda first: fps_targets(first, 1.0))
    first = next(samples)
    assert first.payload == 0 and len(held) == 2  # the sampler pulled just one frame past the target
    rest = list(samples)
    assert len(rest) + 1 == 334 and rest[-1].payload == 9990


def test_sampling_validates():
    with pytest.raises(UsageError):
        Sampling(fps=None, num_frames=None)
    with pytest.raises(UsageError):
        Sampling(fps=0.0)
    with pytest.raises(UsageError):
        Sampling(fps=None, num_frames=0)
    assert Sampling(fps=2.0).to_dict() == {"fps": 2.0, "num_frames": None}


def test_num_frames_gives_exactly_n_when_the_last_frames_promised_never_decode():
    """The container's span says 0..4 s but frames stop at 1.2 s (a truncated tail, dropped packets):
    the targets past the last frame take it, the latest at or before them, and all 5 come out."""
    times = [0.0, 0.4, 0.8, 1.2]
    out = [(s.index, s.t_start) for s in sample_stream(frames(times), lambda first: even_targets(0.0, 4.0, 5), count=5)]
    assert out == [(0, 0.0), (1, 0.8), (2, 1.2), (3, 1.2), (4, 1.2)]
    # Without a count (a rate), targets past the last frame are not samples: nothing to take them from.
    assert [s.t_start for s in sample_stream(frames(times), lambda first: fps_targets(first, 1.0))] == [0.0, 0.8]


def test_num_frames_over_a_short_video_repeats_frames_to_give_n():
    out = [s.t_start for s in sample_stream(frames([0.0, 0.5]), lambda first: even_targets(0.0, 0.5, 4), count=4)]
    assert out == [0.0, 0.0, 0.0, 0.5]
