"""Stores under fsspec URLs (issue 16), against moto's S3 server on loopback (never a real cloud):
`alex extract --store s3://...` writes what a local extraction writes, segment by segment with
`videos.parquet` uploaded last, and `alex query`, `info`, `search` and `train` read it through the
fsspec filesystem (DuckDB) and fsspec's file cache (HDF5)."""

import os
import subprocess
import sys

import pytest

import alex
from alex.pipeline.extract import ExtractOptions, extract
from tests.fixtures.stores import assert_same, snapshot
from tests.fixtures.videos import make_video

ENCODERS = ["pixels:8", "tubelet:tiny@random", "clip:tiny@random"]


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """An S3 endpoint on loopback with a bucket; credentials and endpoint in the standard environment."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # fsspec's file cache of this test
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("bucket")
    yield fs
    server.stop()


def cli(*args):
    done = subprocess.run([sys.executable, "-m", "alex", *map(str, args)], capture_output=True, text=True, timeout=600,
                          env=os.environ.copy())
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
def test_a_store_in_s3_is_written_and_read_as_a_local_one(tmp_path, s3):
    videos = tmp_path / "v"
    for i in range(5):
        make_video(videos / f"v{i}.mp4", num_frames=12, fps=6, seed=i, noise=True)
    (videos / "broken.mp4").write_bytes(b"not a video")
    url = "s3://bucket/stores/demo"
    args = [a for e in ENCODERS for a in ("-e", e)] + ["--shard-size", "2", "--fps", "2"]
    code, output = cli("extract", "--videos", videos, "--store", url, *args)
    assert code == 1 and "broken.mp4" in output, output  # the bad video is an error row, the rest are stored
    assert not list(tmp_path.glob("s3:*")) and not os.path.exists("s3:")  # no local folder named s3:
    assert extract(ExtractOptions(videos=videos, store=tmp_path / "local", encoders=ENCODERS, fps=2, shard_videos=2,
                                  workers=0)).exit_code == 1
    remote = snapshot(url)
    assert_same(remote, snapshot(tmp_path / "local"))
    segments = s3.ls("bucket/stores/demo/segments")
    assert len(segments) == 3 and all(s3.exists(f"{s}/videos.parquet") for s in segments)

    code, output = cli("query", "SELECT count(*) AS n FROM videos WHERE status = 'ok'", "--store", url, "-f", "csv")
    assert code == 0 and output.split()[-1] == "5", output
    code, output = cli("info", "--store", url)
    assert code == 0 and "5 ok, 1 failed" in output, output
    code, output = cli("search", "a moving square", "--store", url, "-e", "clip", "-k", "2")
    assert code == 0 and "v" in output, output

    # A writer killed mid-upload leaves a segment without videos.parquet: readers do not see it.
    s3.pipe("bucket/stores/demo/segments/00000000000000000099-torn/items.parquet", b"half")
    assert snapshot(url)[0] == remote[0]
    # A rerun is a no-op; a new video goes into a new segment after the existing ones.
    code, output = cli("extract", "--videos", videos, "--store", url, *args)
    assert "5 already up to date" in output, output
    make_video(videos / "v9.mp4", num_frames=12, fps=6, seed=9, noise=True)
    code, output = cli("extract", "--videos", videos, "--store", url, *args)
    assert "extracted 1 video(s)" in output, output
    with alex.open_store(url) as s:
        assert s.sql("SELECT count(*) FROM videos WHERE status = 'ok'").fetchall()[0][0] == 6

    # An unexpected failure's traceback reaches the store too (object stores cannot append: a file per run).
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import av\n_open = av.open\n"
        "def _planted(path, *a, **k):\n"
        "    if 'bug' in str(path):\n        raise KeyError('planted bug')\n    return _open(path, *a, **k)\n"
        "av.open = _planted\n")
    make_video(videos / "bug.mp4", num_frames=6, seed=11)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.getcwd()])}
    done = subprocess.run([sys.executable, "-m", "alex", "extract", "--videos", str(videos), "--store", url, *args],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 1, done.stderr
    (log,) = s3.glob("bucket/stores/demo/logs/alex-errors-*.log")
    assert b"planted bug" in s3.cat_file(log) and b"Traceback" in s3.cat_file(log)
    (videos / "bug.mp4").unlink()

    # Training reads the arrays (tubelet tokens, HDF5) through fsspec's file cache.
    labels = tmp_path / "labels.csv"
    labels.write_text("video_id,label,split\n" + "".join(
        f"v{i}.mp4,{'ab'[i % 2]},{['train', 'train', 'validation', 'test', 'train', 'validation'][k]}\n"
        for k, i in enumerate([0, 1, 2, 3, 4, 9])))
    code, output = cli("train", "--store", url, "--labels", labels, "--inputs", "tubelet", "-o", tmp_path / "run",
                       "--epochs", "1", "--batch-size", "2", "--device", "cpu")
    assert code == 0, output
    assert list((tmp_path / "home" / ".cache" / "alex" / "remote").iterdir())  # the shards were cached locally


def test_a_url_without_its_filesystem_or_with_an_unknown_protocol_is_a_clear_error(tmp_path):
    make_video(tmp_path / "v" / "a.mp4", num_frames=4)
    code, output = cli("extract", "--videos", tmp_path / "v", "--store", "gs://bucket/x", "-e", "pixels:8")
    assert code == 2 and 'pip install "alex[gcs]"' in output and "gs://" in output, output
    code, output = cli("query", "SELECT 1", "--store", "nosuchfs://bucket/x")
    assert code == 2 and "unknown protocol 'nosuchfs'" in output, output
    assert not (tmp_path / "gs:").exists() and not os.path.exists("gs:")
    code, output = cli("verify", "s3://bucket/x")
    assert code == 2 and "works on a store folder" in output, output
