"""Reaching the hub (issue 15): huggingface_hub's offline mode and proxy settings are honoured (no
raw socket test), and a failed download is an error that says why, never "the file does not exist"."""

import os
import socket
import subprocess
import sys
import threading

import pytest

from alex.errors import WeightsUnavailableError
from alex.hub import hub_file, hub_reachable


def test_offline_mode_answers_without_a_request(monkeypatch):
    import huggingface_hub.utils

    def no_request():
        raise AssertionError("a request was made in offline mode")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.utils, "get_session", no_request)
    hub_reachable.cache_clear()
    try:
        assert hub_reachable() is False
    finally:
        hub_reachable.cache_clear()


def test_the_check_goes_through_the_proxy_the_environment_names(tmp_path):
    """A fake proxy on loopback records what it is asked and refuses: the check asked it for the hub
    (so HTTPS_PROXY was honoured) and answers "not reachable" instead of hanging."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    seen = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                seen.append(conn.recv(4096).decode("latin-1").splitlines()[0])
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    proxy = f"http://127.0.0.1:{server.getsockname()[1]}"
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy,
           "NO_PROXY": "", "no_proxy": ""}
    done = subprocess.run([sys.executable, "-c", "from alex.hub import hub_reachable; print(hub_reachable())"],
                          capture_output=True, text=True, env=env, timeout=60)
    server.close()
    assert done.stdout.strip() == "False", done.stderr
    assert seen and seen[0].startswith("CONNECT huggingface.co:443"), seen


def test_a_failed_download_is_an_error_with_its_reason_and_a_missing_file_is_none(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    monkeypatch.setattr("alex.hub.require_hub", lambda *a, **k: None)  # as if the hub were reachable
    calls = []

    def refused(repo_id, filename, **_):
        calls.append(filename)
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refused)
    with pytest.raises(WeightsUnavailableError, match="downloading org/model/a.json failed: ConnectionResetError: connection reset"):
        hub_file("org/model", ["a.json", "b.json"], "tubelet:org/model")
    assert calls == ["a.json"]  # not read as "a.json does not exist, try b.json"

    def absent(repo_id, filename, **_):
        raise EntryNotFoundError(f"{filename} not found")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", absent)
    assert hub_file("org/model", ["a.json", "b.json"], "tubelet:org/model") is None


def test_without_the_hub_an_uncached_file_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    hub_reachable.cache_clear()
    with pytest.raises(WeightsUnavailableError, match="could not reach"):
        hub_file("facebook/vjepa2-vitl-fpc64-256", ["video_preprocessor_config.json"], "tubelet:facebook/vjepa2-vitl-fpc64-256")
