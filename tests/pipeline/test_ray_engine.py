"""`alex extract --engine ray` (issue 16) on a local Ray cluster the test starts (2 CPUs): the store
equals the local engine's, row for row and array for array, with a bad video as an error row, a
resumed run, and a decode worker that dies mid-run (Ray retries it; no row missing or doubled)."""

import os
from pathlib import Path

import pytest

from alex.pipeline.extract import ExtractOptions, extract
from tests.fixtures.stores import assert_same, snapshot
from tests.fixtures.videos import make_video

ENCODERS = ["pixels:8", "tubelet:tiny@random"]
# Planted in every Ray worker (they inherit PYTHONPATH): the first decode of a file named `flaky`
# kills its process; the marker file makes the retry succeed.
FAULT = '''
import os
import av
_open = av.open
def _planted(path, *args, **kwargs):
    marker = os.environ.get("ALEX_TEST_FLAKY_MARKER")
    if marker and "flaky" in os.path.basename(str(path)) and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return _open(path, *args, **kwargs)
av.open = _planted
'''


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(FAULT)
    marker = site / "flaky-died-once"
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "ALEX_TEST_FLAKY_MARKER")}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(site), str(Path(__file__).resolve().parents[2])])
    os.environ["ALEX_TEST_FLAKY_MARKER"] = str(marker)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield marker
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.mark.slow
def test_the_ray_engine_writes_the_local_engines_store(tmp_path, ray_cluster):
    videos = tmp_path / "v"
    for i in range(5):
        make_video(videos / f"v{i}.mp4", num_frames=10 + 4 * i, fps=6, seed=i, noise=True)
    make_video(videos / "flaky.mp4", num_frames=12, fps=6, seed=50, noise=True)
    (videos / "broken.mp4").write_bytes(b"not a video at all")
    common = dict(videos=videos, encoders=ENCODERS, fps=2, shard_videos=2)
    local = extract(ExtractOptions(store=tmp_path / "local", workers=0, **common))
    assert local.exit_code == 1 and [v for v, _ in local.failed] == ["broken.mp4"]

    # A resumed run: two videos are there already (local engine), Ray extracts the rest.
    first = extract(ExtractOptions(store=tmp_path / "ray", workers=0, globs=["v0.mp4", "v1.mp4"], **common))
    assert first.exit_code == 0
    assert not ray_cluster.exists()
    report = extract(ExtractOptions(store=tmp_path / "ray", engine="ray", **common))
    assert report.exit_code == 1 and report.up_to_date == 2
    assert sorted(report.ok) == ["flaky.mp4", "v2.mp4", "v3.mp4", "v4.mp4"]
    assert [v for v, _ in report.failed] == ["broken.mp4"]
    assert ray_cluster.exists(), "the planted worker death did not happen"
    assert_same(snapshot(tmp_path / "ray"), snapshot(tmp_path / "local"), atol=1e-3)
    again = extract(ExtractOptions(store=tmp_path / "ray", engine="ray", **common))
    assert again.up_to_date == 6 and not again.ok
