import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import alex
from alex.errors import UsageError
from alex.heads.data import select_labelled
from alex.heads.labels import hash_split, read_labels
from alex.pipeline.extract import ExtractOptions, extract
from tests.conftest import make_bad_videos
from tests.fixtures.videos import make_video


def write(path, rows):
    if path.suffix == ".csv":
        path.write_text(",".join(rows[0]) + "\n" + "".join(",".join(map(str, r.values())) + "\n" for r in rows))
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_csv_jsonl_parquet_read_alike(tmp_path, suffix):
    rows = [{"video_id": f"v{i}.mp4", "label": ["cat", "dog"][i % 2], "split": ["train", "val", "test"][i % 3]} for i in range(9)]
    table = read_labels(write(tmp_path / f"labels{suffix}", rows))
    assert table.labels["v1.mp4"] == "dog" and table.splits["v1.mp4"] == "validation"
    assert len(table.labels) == 9


def test_bad_files_name_the_file_and_the_problem(tmp_path):
    path = write(tmp_path / "l.csv", [{"video_id": "a.mp4", "klass": 1}])
    with pytest.raises(UsageError, match=r"l\.csv has no column 'label'"):
        read_labels(path)
    path = write(tmp_path / "d.csv", [{"video_id": "a.mp4", "label": 1}, {"video_id": "a.mp4", "label": 2}])
    with pytest.raises(UsageError, match=r"d\.csv lists 1 video\(s\) more than once"):
        read_labels(path)
    path = write(tmp_path / "s.csv", [{"video_id": "a.mp4", "label": 1, "split": "holdout"}])
    with pytest.raises(UsageError, match=r"s\.csv: split 'holdout'"):
        read_labels(path)
    with pytest.raises(UsageError, match="does not exist"):
        read_labels(tmp_path / "missing.csv")
    (tmp_path / "l.txt").write_text("video_id label")
    with pytest.raises(UsageError, match=r"\.csv, \.jsonl or \.parquet"):
        read_labels(tmp_path / "l.txt")


def test_hash_split_is_deterministic_and_follows_fractions():
    ids = [f"clip_{i}.mp4" for i in range(4000)]
    splits = [hash_split(v, (0.6, 0.2, 0.2)) for v in ids]
    assert splits == [hash_split(v, (0.6, 0.2, 0.2)) for v in ids]
    for name, fraction in [("train", 0.6), ("validation", 0.2), ("test", 0.2)]:
        assert splits.count(name) / len(ids) == pytest.approx(fraction, abs=0.03)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels")
    for i in range(6):
        make_video(root / "v" / f"ok{i}.mp4", num_frames=10)
    make_bad_videos(root / "v")
    extract(ExtractOptions(videos=root / "v", store=root / "s", encoders=["pixels"], workers=0))
    # one more video with clip only: it lacks the 'pixels' input
    make_video(root / "v2" / "cliponly.mp4", num_frames=10)
    extract(ExtractOptions(videos=root / "v2", store=root / "s", encoders=["clip:tiny@random"], workers=0))
    return root / "s"


def test_skipped_videos_are_counted_and_unknown_ids_refused(small_store, tmp_path):
    rows = [{"video_id": f"ok{i}.mp4", "label": i % 2, "split": ["train", "validation", "test"][i % 3]} for i in range(5)]
    rows += [{"video_id": "empty.mp4", "label": 1, "split": "train"}, {"video_id": "cliponly.mp4", "label": 0, "split": "train"}]
    with alex.open_store(small_store) as store:
        selection = select_labelled(store, read_labels(write(tmp_path / "l.csv", rows)), ["pixels"])
        assert selection.counts() == {"train": 2, "validation": 2, "test": 1}
        assert selection.skipped == {"status error": 5, "missing features": 1, "no label": 1}  # ok5 has no label
        unknown = write(tmp_path / "u.csv", rows + [{"video_id": "elsewhere.mp4", "label": 0, "split": "train"}])
        with pytest.raises(UsageError, match=r"u\.csv names 1 video\(s\) that are not in store.*elsewhere\.mp4"):
            select_labelled(store, read_labels(unknown), ["pixels"])
        no_test = write(tmp_path / "n.csv", [r for r in rows if r["split"] != "test"])
        with pytest.raises(UsageError, match=r"n\.csv: the test split is empty"):
            select_labelled(store, read_labels(no_test), ["pixels"])
