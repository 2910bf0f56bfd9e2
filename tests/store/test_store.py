import json
import os

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import alex
from alex.errors import StoreFormatError, StoreLockedError, UsageError
from alex.pipeline.extract import ExtractOptions, extract
from alex.store.layout import STAGING_DIR, STORE_JSON
from alex.store.writer import StepBatch, StoreWriter
from tests.fixtures.videos import make_video


@pytest.fixture(scope="module")
def store(clips, tmp_path_factory):
    root = tmp_path_factory.mktemp("store") / "s"
    extract(ExtractOptions(videos=clips, store=root, encoders=["pixels", "clip:tiny@random"], workers=0, fps=2.0))
    return root


def test_queries_give_expected_counts(store):
    with alex.open_store(store) as s:
        assert s.sql("SELECT count(*) FROM videos WHERE status = 'ok'").fetchall() == [(4,)]
        per_video = dict(s.sql("SELECT video_id, count(*) FROM frames WHERE encoder='clip' GROUP BY 1").fetchall())
        assert per_video == {"a.mp4": 6, "b.mp4": 5, "sub/c.mp4": 4, "vfr.mp4": 6}
        assert s.sql("SELECT encoder, dim FROM encoders ORDER BY 1").fetchall() == [("clip", 32), ("pixels", 768)]
        joined = s.sql(
            "SELECT v.width, count(*) FROM frames f JOIN videos v USING (video_id) WHERE f.encoder='pixels' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert joined == [(48, 5), (64, 16)]
        assert len(s.videos().fetchall()) == 4 and len(s.frames("pixels").fetchall()) == 21


def test_search_with_a_frames_own_embedding_returns_that_frame(tmp_path):
    # Noise frames: every frame differs from every other one.
    for seed, (name, n) in enumerate([("n1.mp4", 20), ("n2.mp4", 30), ("n3.mp4", 25)]):
        make_video(tmp_path / "v" / name, num_frames=n, fps=10, noise=True, seed=seed)
    extract(ExtractOptions(videos=tmp_path / "v", store=tmp_path / "s", encoders=["clip:tiny@random"], workers=0, fps=5.0))
    with alex.open_store(tmp_path / "s") as s:
        assert s.sql("SELECT count(*) FROM frames").fetchall() == [(38,)]
        for video_id, index in [("n2.mp4", 13), ("n1.mp4", 0), ("n3.mp4", 7)]:
            arrays = s.arrays(video_id, "clip")
            hits = s.search(arrays.embedding[index], "clip", k=3).fetchall()
            assert (hits[0][0], hits[0][1]) == (video_id, index)
            assert hits[0][2] == arrays.t_start[index]
            assert hits[0][4] == pytest.approx(1.0, abs=1e-3)
        with pytest.raises(UsageError, match="stores 32"):
            s.search(np.zeros(5), "clip")


def test_encoder_names_differing_in_dash_and_underscore_search_their_own_vectors(tmp_path):
    """`a-b` and `a_b` shared one search cache table: the second searched the first's vectors."""
    for seed in range(2):
        make_video(tmp_path / "v" / f"n{seed}.mp4", num_frames=20, fps=10, noise=True, seed=seed)
    extract(ExtractOptions(videos=tmp_path / "v", store=tmp_path / "s", workers=0, fps=2.0,
                           encoders=["a-b=clip:tiny@random", "a_b=pixels:4"]))
    with alex.open_store(tmp_path / "s") as s:
        for encoder, dim in (("a-b", 32), ("a_b", 48), ("a-b", 32)):
            arrays = s.arrays("n1.mp4", encoder)
            hits = s.search(arrays.embedding[2], encoder, k=1).fetchall()
            assert arrays.embedding.shape[1] == dim
            assert (hits[0][0], hits[0][1]) == ("n1.mp4", 2) and hits[0][4] == pytest.approx(1.0, abs=1e-3), encoder


def test_query_cannot_change_or_delete_stored_data(store, tmp_path):
    files = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    segment_file = next(p for p in files if p.name == "videos.parquet")
    attempts = [
        "DELETE FROM videos",
        "DROP VIEW frames",
        "CREATE TABLE x AS SELECT 1",
        f"COPY (SELECT 1 AS a) TO '{segment_file}' (FORMAT parquet)",
        f"COPY (SELECT 1 AS a) TO '{tmp_path / 'out.csv'}'",
        f"ATTACH '{tmp_path / 'x.duckdb'}' AS x",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "SELECT 1; DELETE FROM videos",
    ]
    with alex.open_store(store) as s:
        for statement in attempts:
            with pytest.raises((UsageError, duckdb.Error)):
                s.sql(statement).fetchall()
        # Even a SELECT cannot reach files outside the store.
        with pytest.raises(duckdb.Error):
            s.sql("SELECT * FROM read_csv('/etc/hostname')").fetchall()
        assert s.sql("SELECT count(*) FROM videos").fetchall() == [(4,)]
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == files
    assert not (tmp_path / "out.csv").exists()


def test_arrays_api_and_missing_items(store):
    with alex.open_store(store) as s:
        arrays = s.arrays("a.mp4", "pixels")
        assert arrays.embedding.shape == (6, 768) and arrays.t_start.shape == (6,)
        assert np.all(np.diff(arrays.t_start) > 0) and np.all(arrays.t_end > arrays.t_start)
        with pytest.raises(KeyError):
            s.arrays("nope.mp4", "pixels")
        with pytest.raises(UsageError, match="has no encoder 'audio'"):
            s.arrays("a.mp4", "audio")


def test_other_format_version_or_not_a_store_is_a_clear_error(store, tmp_path):
    with pytest.raises(StoreFormatError, match="not an alex store"):
        alex.open_store(tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    config = json.loads((store / STORE_JSON).read_text())
    config["format_version"] = 99
    (copy / STORE_JSON).write_text(json.dumps(config))
    with pytest.raises(StoreFormatError, match="version 99"):
        alex.open_store(copy)


def test_one_writer_at_a_time(tmp_path):
    with StoreWriter(tmp_path / "s"):
        with pytest.raises(StoreLockedError, match="another alex process"):
            StoreWriter(tmp_path / "s")
    StoreWriter(tmp_path / "s").close()  # released


def _steps(n, dim, start=0):
    values = np.arange(start * dim, (start + n) * dim, dtype=np.float32).reshape(n, dim) / 100
    t = np.arange(start, start + n, dtype=np.float64)
    return StepBatch(np.arange(start, start + n), t, t + 1, values, {"embedding": values})


def test_unsealed_segments_are_invisible_and_cleaned(tmp_path):
    root = tmp_path / "s"
    writer = StoreWriter(root)
    writer.set_encoder_config("e", {"family": "pixels", "dim": 4, "dtype": "float16", "sampling": {}})
    writer.begin_video("a.mp4")
    writer.append("a.mp4", "e", _steps(3, 4))
    writer.finish_video({"video_id": "a.mp4", "fingerprint": "fp", "status": "ok"}, ["e"])
    # Not sealed yet: a reader sees nothing (a crash here loses only this segment).
    with alex.open_store(root) as s:
        assert s.sql("SELECT count(*) FROM frames").fetchall() == [(0,)]
    assert any((root / STAGING_DIR).iterdir())
    os.close(writer._lock_fd)  # as if the process died: the lock goes with it
    StoreWriter(root).close()
    assert not (root / STAGING_DIR).exists() or not any((root / STAGING_DIR).iterdir())


def test_long_videos_spill_to_disk_in_chunks(tmp_path, monkeypatch):
    import alex.store.writer as writer_module

    monkeypatch.setattr(writer_module, "SPILL_BYTES", 1000)
    with StoreWriter(tmp_path / "s") as writer:
        writer.set_encoder_config("e", {"family": "x", "dim": 16, "dtype": "float32", "sampling": {}})
        writer.begin_video("long.mp4")
        for k in range(10):
            writer.append("long.mp4", "e", _steps(20, 16, start=20 * k))
            assert writer._videos["long.mp4"].pending_bytes <= 1000 + 20 * 16 * 4 + 2 * 20 * 8
        writer.finish_video({"video_id": "long.mp4", "fingerprint": "fp", "status": "ok"}, ["e"])
    with alex.open_store(tmp_path / "s") as s:
        arrays = s.arrays("long.mp4", "e")
        assert arrays.embedding.shape == (200, 16)
        assert np.array_equal(arrays.t_start, np.arange(200.0))
        assert np.array_equal(arrays.embedding, _steps(200, 16).pooled)
        assert s.sql("SELECT count(*), max(index) FROM frames").fetchall() == [(200, 199)]


def test_frames_embedding_is_a_fixed_size_list(store):
    import pyarrow.parquet as pq

    files = sorted(store.rglob("frames/clip.parquet"))
    schema = pq.read_schema(files[0])
    assert schema.field("embedding").type == pa.list_(pa.float16(), 32)
