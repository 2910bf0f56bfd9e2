"""LanguageBind video tower (shared/specs/languagebind.md): published key names, strict loading,
LoRA collapse, vl_new, temporal attention, pooling, preprocessing, extraction and search."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import alex
from alex.errors import EncoderSpecError
from alex.pipeline.encoders import build_encoder
from alex.pipeline.encoders.languagebind import LanguageBindVideo, LanguageBindVideoConfig, convert_state_dict
from alex.pipeline.encoders.languagebind.configuration_languagebind import TINY
from alex.pipeline.encoders.languagebind.processing import OPENAI_MEAN, OPENAI_STD, LanguageBindFrames
from alex.pipeline.extract import ExtractOptions, extract
from alex.pipeline.search import search_text
from tests.fixtures.videos import make_video

PUBLISHED = [
    "logit_scale", "visual_projection.weight", "text_projection.weight",
    "vision_model.embeddings.class_embedding", "vision_model.embeddings.patch_embedding.weight",
    "vision_model.embeddings.position_embedding.weight", "vision_model.embeddings.position_ids",
    "vision_model.pre_layrnorm.weight", "vision_model.post_layernorm.bias",
    "vision_model.encoder.layers.1.temporal_embedding", "vision_model.encoder.layers.1.temporal_attn.q_proj.weight",
    "vision_model.encoder.layers.1.temporal_attn.out_proj.bias", "vision_model.encoder.layers.1.temporal_layer_norm1.weight",
    "vision_model.encoder.layers.1.self_attn.k_proj.bias", "vision_model.encoder.layers.1.mlp.fc1.weight",
    "vision_model.encoder.layers.1.layer_norm2.weight", "text_model.embeddings.token_embedding.weight",
    "text_model.embeddings.position_embedding.weight", "text_model.encoder.layers.1.self_attn.v_proj.weight",
    "text_model.final_layer_norm.weight",
]


def tiny(seed=0, **vision):
    config = json.loads(json.dumps(TINY))
    config["vision_config"].update(vision)
    torch.manual_seed(seed)
    return LanguageBindVideo(LanguageBindVideoConfig(**config)).eval()


def clip_pixels(seed=0, frames=4):
    return torch.randn(2, 3, frames, 32, 32, generator=torch.Generator().manual_seed(seed))  # (B, C, T, H, W)


def test_state_dict_uses_the_published_key_names_and_loads_strictly(tmp_path):
    model = tiny()
    state = model.state_dict()
    assert set(PUBLISHED) <= set(state)
    assert not any("temporal_mlp" in k or "temporal_layer_norm2" in k for k in state)  # not in the published model
    assert state["vision_model.encoder.layers.0.temporal_embedding"].shape == (1, 4, 32)
    folder = tmp_path / "LanguageBind_Video_tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(model.config.to_dict()))
    published = {k: v for k, v in state.items() if k != "vision_model.embeddings.position_ids"}  # as the VL copy saves
    torch.save(published, folder / "pytorch_model.bin")
    encoder = build_encoder(f"languagebind:{folder}")
    with torch.no_grad():
        expected, _ = model.video_features(clip_pixels())
        got, _ = encoder.model.video_features(clip_pixels())
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    broken = dict(published)
    broken["vision_model.encoder.layers.0.temporal_attn.q_proj.kernel"] = broken.pop("vision_model.encoder.layers.0.temporal_attn.q_proj.weight")
    with pytest.raises(RuntimeError, match="temporal_attn.q_proj"):
        tiny(seed=1).load_state_dict(convert_state_dict(broken, tiny(seed=1)), strict=True)


def test_a_checkpoint_with_the_text_position_ids_of_transformers_4_30_loads():
    model = tiny()
    state = dict(model.state_dict())
    length = model.config.text_config.max_position_embeddings
    state["text_model.embeddings.position_ids"] = torch.arange(length).unsqueeze(0)  # as transformers 4.30 saved it
    fresh = tiny(seed=1)
    fresh.load_state_dict(convert_state_dict(state, fresh), strict=True)
    ids = torch.tensor([[1, 5, 7, 2]])
    with torch.no_grad():
        torch.testing.assert_close(fresh.text_features(ids), model.text_features(ids), rtol=0, atol=0)
    state["text_model.embeddings.position_ids"] = torch.arange(length).flip(0).unsqueeze(0)
    with pytest.raises(EncoderSpecError, match="text_model.embeddings.position_ids holds"):
        convert_state_dict(state, tiny(seed=1))


def test_lora_checkpoints_collapse_to_the_merged_weights():
    model = tiny()
    alpha, rank = model.config.vision_config.lora_alpha, 4
    lora = {}
    generator = torch.Generator().manual_seed(5)
    for key, value in model.state_dict().items():
        name = key.replace("vision_model.encoder.", "vision_model.encoder.base_model.model.")
        if ".temporal_attn." in key and key.endswith(".weight"):
            A, B = torch.randn(rank, value.shape[1], generator=generator), torch.randn(value.shape[0], rank, generator=generator)
            lora[name] = value - alpha / rank * (B @ A)  # so that W + (alpha / r) B A is the original
            lora[name.replace(".weight", ".lora_A.default.weight")] = A
            lora[name.replace(".weight", ".lora_B.default.weight")] = B
        else:
            lora[name] = value
    fresh = tiny(seed=9)
    fresh.load_state_dict(convert_state_dict(lora, fresh), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh.video_features(clip_pixels())[0], model.video_features(clip_pixels())[0], rtol=1e-4, atol=1e-5)


def test_vl_new_has_a_3d_patch_conv_and_one_cls_per_frame():
    model = tiny(clip_type="vl_new", tube_size=1)
    state = model.state_dict()
    assert state["vision_model.embeddings.patch_embedding.weight"].shape == (32, 3, 1, 8, 8)
    assert state["vision_model.embeddings.class_embedding"].shape == (4, 32)
    embeddings = model.vision_model.embeddings
    frames = clip_pixels().permute(0, 2, 1, 3, 4).reshape(8, 3, 32, 32)
    tokens = embeddings(frames, 4)  # (B*T, 17, D)
    conv2d = F.conv2d(frames, embeddings.patch_embedding.weight[:, :, 0], stride=8).flatten(2).transpose(1, 2)
    positions = embeddings.position_embedding.weight
    torch.testing.assert_close(tokens[:, 1:], conv2d + positions[1:], rtol=1e-5, atol=1e-5)
    for t in range(4):  # frame t of each clip carries class_embedding[t]
        torch.testing.assert_close(tokens[t, 0], embeddings.class_embedding[t] + positions[0])
        torch.testing.assert_close(tokens[4 + t, 0], embeddings.class_embedding[t] + positions[0])


def test_temporal_attention_mixes_frames_of_the_same_token_position_only():
    layer = tiny().vision_model.encoder.layers[0]
    x = torch.randn(2 * 4, 17, 32)  # (B*T, N, D), frame-minor
    moved = x.clone()
    moved[1, 5] += torch.randn(32)  # video 0, frame 1, token 5 (not a constant shift, which LayerNorm removes)
    with torch.no_grad():
        delta = (layer.temporal(moved) - layer.temporal(x)).abs().sum(-1)  # (B*T, N)
    changed = delta > 1e-6
    assert changed[:4, 5].all()  # every frame of video 0 at token 5
    changed[:4, 5] = False
    assert not changed.any()  # no other token position, no other video


def test_pooled_output_is_the_mean_over_frames_of_the_post_layernormed_cls():
    model = tiny()
    with torch.no_grad():
        pooled, hidden = model.vision_model(clip_pixels())
        cls = model.vision_model.post_layernorm(hidden[-1][:, 0]).view(2, 4, -1)
    torch.testing.assert_close(pooled, cls.mean(dim=1))
    assert len(hidden) == 1 + 2  # the embedding output and one per layer


def test_preprocessing_is_the_reference_without_the_flip():
    rgb = np.random.default_rng(0).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    ours = LanguageBindFrames(size=64)(rgb)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[:, None].float() / 255  # (C, T=1, H, W)
    x = (x - torch.tensor(OPENAI_MEAN).view(3, 1, 1, 1)) / torch.tensor(OPENAI_STD).view(3, 1, 1, 1)
    x = F.interpolate(x, size=(64, int(160 / 90 * 64)), mode="bilinear", align_corners=False)  # ShortSideScale
    left = int(round((x.shape[-1] - 64) / 2.0))
    reference = x[:, 0, :, left : left + 64].permute(1, 2, 0).numpy()
    assert ours.shape == (64, 64, 3)
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_languagebind_extracts_clips_tokens_and_serves_search(tmp_path):
    make_video(tmp_path / "v" / "a.mp4", num_frames=50, fps=10, noise=True)
    report = extract(ExtractOptions(videos=tmp_path / "v", store=tmp_path / "s", encoders=["languagebind:tiny@random"],
                                    workers=0, fps=2.0, keep_tokens=True))
    assert report.exit_code == 0
    with alex.open_store(tmp_path / "s") as s:
        rows = s.sql("SELECT index, t_start, padded FROM frames ORDER BY index").fetchall()
        assert rows == [(0, 0.0, 0), (1, 2.0, 0), (2, 4.0, 2)]  # 10 sampled frames in clips of 4
        tokens = s.arrays("a.mp4", "languagebind").arrays["tokens"]
        assert tokens.shape == (3, 4, 17, 32)  # (clips, frames, 1 + 16 patches, width): hidden_states[-2]
        assert s.encoders["languagebind"]["tokens"] is True
    hits = search_text(tmp_path / "s", "static noise", k=2)
    assert len(hits) == 2 and hits[0]["score"] >= hits[1]["score"]
