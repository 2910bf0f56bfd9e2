
import pytest

from alex.datasets.moving_digits import make_moving_digits
from alex.pipeline.extract import ExtractOptions, extract


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """300 moving-digit videos extracted with pixels (32 x 32) and the tiny random CLIP at 2 fps."""
    root = tmp_path_factory.mktemp("digits")
    data = make_moving_digits(root, num_videos=300, seed=1)
    store = root / "store"
    report = extract(ExtractOptions(videos=data.videos, store=store, encoders=["p32=pixels:32", "clip:tiny@random"],
                                    fps=2.0, workers=1))
    assert report.exit_code == 0
    return data, store
