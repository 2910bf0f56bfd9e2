import os

import pytest

from alex.errors import UsageError
from alex.pipeline.listing import fingerprint, list_videos


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_video_extensions_recursively_skipping_dirs_and_broken_links(tmp_path):
    for name in ["a.mp4", "B.MKV", "deep/c.webm", "deep/er/d.gif", "notes.txt", "e.mp4.part", ".hidden.mp4"]:
        touch(tmp_path / name)
    (tmp_path / "folder.avi").mkdir()
    os.symlink(tmp_path / "gone.mp4", tmp_path / "broken.mov")
    listing = list_videos(tmp_path)
    assert [v.video_id for v in listing.videos] == ["B.MKV", "a.mp4", "deep/c.webm", "deep/er/d.gif"]
    assert sorted(listing.skipped) == [("broken.mov", "broken link"), ("folder.avi", "a directory")]


def test_glob_overrides_extensions(tmp_path):
    for name in ["a.mp4", "clips/b.bin", "clips/c.bin", "clips/d.txt"]:
        touch(tmp_path / name)
    listing = list_videos(tmp_path, globs=["clips/*.bin"])
    assert [v.video_id for v in listing.videos] == ["clips/b.bin", "clips/c.bin"]
    assert [v.video_id for v in list_videos(tmp_path, globs=["**/*.mp4", "**/*.txt"]).videos] == ["a.mp4", "clips/d.txt"]


def test_single_file_and_missing_folder(tmp_path):
    path = touch(tmp_path / "x" / "one.mp4")
    assert [(v.video_id, v.path) for v in list_videos(path).videos] == [("one.mp4", path)]
    with pytest.raises(UsageError, match="no such file"):
        list_videos(tmp_path / "nope")


def test_fingerprint_follows_content_not_time(tmp_path):
    big = bytearray(os.urandom(3 << 20))
    path = touch(tmp_path / "v.mp4", bytes(big))
    first = fingerprint(path)
    os.utime(path, (0, 0))
    assert fingerprint(path) == first  # touched, same bytes
    big[len(big) // 2 : len(big) // 2 + 4096] = os.urandom(4096)  # an edit in the middle
    path.write_bytes(bytes(big))
    assert fingerprint(path) != first
    path.write_bytes(bytes(big[:-1]))
    assert fingerprint(path) != first
