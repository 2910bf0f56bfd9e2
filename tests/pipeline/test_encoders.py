import time

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from alex.errors import EncoderSpecError, WeightsUnavailableError
from alex.pipeline.encoders import build_encoder, known_families
from alex.pipeline.encoders.spec import EncoderSpec
from alex.pipeline.encoders.transforms import ResizeCrop


@pytest.mark.parametrize(
    "text, expected",
    [
        ("clip", EncoderSpec("clip", "clip", None, None)),
        ("clip:ViT-B-32@openai", EncoderSpec("clip", "clip", "ViT-B-32", "openai")),
        ("clip:tiny@random", EncoderSpec("clip", "clip", "tiny", "random")),
        ("big=clip:ViT-L-14@/w/model@v2.bin", EncoderSpec("big", "clip", "ViT-L-14", "/w/model@v2.bin")),
        ("clip:hf-hub:org/repo", EncoderSpec("clip", "clip", "hf-hub:org/repo", None)),
        ("pixels:32", EncoderSpec("pixels", "pixels", "32", None)),
    ],
)
def test_spec_parsing(text, expected):
    assert EncoderSpec.parse(text) == expected


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(EncoderSpecError) as info:
        build_encoder("vit:foo")
    for family in known_families():
        assert family in str(info.value)


def test_unknown_model_or_tag_is_explained():
    with pytest.raises(EncoderSpecError, match="no model"):
        build_encoder("clip:NoSuchNet@random")
    with pytest.raises(EncoderSpecError, match="laion2b_s34b_b79k"):
        build_encoder("clip:ViT-B-32@nosuchtag")


def test_missing_weights_fail_fast_and_say_how_to_fix(monkeypatch):
    started = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        build_encoder("clip")  # the default: ViT-B-32 laion2b weights, not cached here
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message  # what was looked for
    assert "local path" in message and "alex demo" in message and "pixels" in message


@pytest.mark.parametrize("size, mode", [(224, "shortest"), (32, "shortest"), (40, "squash")])
@pytest.mark.parametrize("shape", [(48, 64), (97, 31), (224, 224)])
def test_resize_crop_matches_torchvision(size, mode, shape):
    import torchvision.transforms as T

    rgb = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours = ResizeCrop(size, "bicubic", mode)(rgb)
    resize = T.Resize((size, size) if mode == "squash" else size, interpolation=T.InterpolationMode.BICUBIC)
    reference = T.CenterCrop(size)(resize(Image.fromarray(rgb)))
    assert np.array_equal(ours, np.asarray(reference))


def test_clip_encode_equals_open_clip_on_its_own_preprocessing():
    encoder = build_encoder("clip:tiny@random")
    model, _, preprocess = open_clip.create_model_and_transforms("tiny")
    model.load_state_dict(encoder.model.state_dict())
    model.eval()
    rgb = np.random.default_rng(1).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    ours = encoder.encode(torch.from_numpy(encoder.transform(rgb))[None])  # (1, D)
    with torch.no_grad():
        reference = model.encode_image(preprocess(Image.fromarray(rgb))[None])
    assert ours.shape == (1, encoder.dim)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


def test_random_weights_are_seeded_and_leave_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = build_encoder("clip:tiny@random")
    assert torch.equal(torch.rand(1), expected_next)
    b = build_encoder("clip:tiny@random")
    for (name, pa), (_, pb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(pa, pb), name
    assert a.encode_text(["a cat"]).shape == (1, a.dim)


def test_pixels_flattens_a_box_filtered_thumbnail():
    encoder = build_encoder("pixels:4")
    rgb = np.zeros((40, 40, 3), dtype=np.uint8)
    rgb[:20] = 200  # top half bright
    thumb = encoder.transform(rgb)
    out = encoder.encode(torch.from_numpy(thumb)[None])[0].reshape(4, 4, 3)
    assert encoder.dim == 48
    assert torch.allclose(out[:2], torch.tensor(200 / 255)) and torch.all(out[2:] == 0)
    with pytest.raises(EncoderSpecError):
        build_encoder("pixels:big")
