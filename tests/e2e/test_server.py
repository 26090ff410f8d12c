"""What only the real server shows: its upload limit on raw HTTP, and a restart while a run trains."""

import base64
import http.client
import os
import re
import signal
import socket
import urllib.parse
import uuid

import pytest
from playwright.sync_api import Browser, Page, expect

from bench.harness import kill_server, stop_runs, streamlit_server
from tests.e2e.conftest import drop, shot, start_run, wait_points

pytestmark = pytest.mark.e2e
MB = 1024 * 1024


def _a_real_upload(page: Page, server, tmp_path) -> tuple[str, dict[str, str]]:
    """Drop a small PNG in a real session; return the upload URL and the headers the browser sent."""
    from PIL import Image

    sample = tmp_path / "small.png"
    Image.new("L", (28, 28), 0).save(sample)
    page.goto(f"{server.url}/Predict")
    expect(page.get_by_role("heading", name="Predict")).to_be_visible(timeout=20_000)
    with page.expect_request(lambda r: "/_stcore/upload_file/" in r.url and r.method == "PUT") as info:
        drop(page, "Drop images of clothing here", sample)
    expect(page.get_by_text("File: small.png")).to_be_visible(timeout=20_000)
    request = info.value
    return request.url, request.all_headers()


def _put(url: str, headers: dict[str, str], body_chunks, length: int | None) -> int:
    """PUT `body_chunks` to `url` (chunked when `length` is None); returns the HTTP status."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path.rsplit("/", 1)[0] + f"/{uuid.uuid4()}"  # a fresh file id for each attempt
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.putrequest("PUT", path, skip_accept_encoding=True)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "host"):
                conn.putheader(name, value)
        if length is None:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(length))
        conn.endheaders()
        try:
            for chunk in body_chunks:
                conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if length is None else chunk)
            if length is None:
                conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the body has all been sent
        return conn.getresponse().status
    finally:
        conn.close()


def _multipart(size: int, boundary: str = "studio-test-boundary"):
    """A multipart body carrying one `size`-byte file, in 1 MB pieces; and its length."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks():
        yield head
        for start in range(0, size, MB):
            yield b"\0" * min(MB, size - start)
        yield tail

    return chunks, len(head) + size + len(tail), f"multipart/form-data; boundary={boundary}"


def test_a_raw_upload_over_the_limit_is_refused_by_the_server(server, trained_run, page: Page, tmp_path):
    from streamlit import config

    config.get_config_options(force_reparse=True)  # read .streamlit/config.toml as the server did
    limit_mb = config.get_option("server.maxUploadSize")
    url, headers = _a_real_upload(page, server, tmp_path)
    small, small_len, content_type = _multipart(1000)
    big, big_len, _ = _multipart((limit_mb + 2) * MB)
    headers = {**headers, "content-type": content_type}
    # The replayed request is accepted as it is: the refusals below are about size and the token only.
    assert _put(url, headers, small(), small_len) == 204
    no_token = {k: v for k, v in headers.items() if k.lower() != "x-xsrftoken"}
    assert _put(url, no_token, small(), small_len) == 403
    assert _put(url, headers, iter(()), big_len) == 413  # refused on its declared length, unread
    assert _put(url, headers, big(), None) == 413  # no length given: cut off while streaming
    page.reload()  # the server is still up and serving
    expect(page.get_by_role("heading", name="Predict")).to_be_visible(timeout=20_000)


def _train_page(page: Page, url: str) -> None:
    page.goto(f"{url}/Train")
    expect(page.get_by_role("heading", name=re.compile(r"Train$"))).to_be_visible(timeout=20_000)


def test_a_run_survives_a_server_restart_and_a_dead_worker_shows_as_failed(
    real_data, browser: Browser, tmp_path
):
    from core import runs

    runs_dir, log = tmp_path / "runs", tmp_path / "streamlit.log"
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    try:
        with streamlit_server(runs_dir, log) as first:
            _train_page(page, first.url)
            start_run(page, epochs=20, cap=3000)
            wait_points(page, 0)
            kill_server(first.proc, signal.SIGKILL)  # the server dies at once; the worker is not its group
        (run,) = runs.list_runs(runs_dir)
        assert run.status == "running", run
        with streamlit_server(runs_dir, log) as second:
            _train_page(page, second.url)
            expect(page.get_by_text(f"Run {run.id}")).to_be_visible(timeout=20_000)
            expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=20_000)
            expect(page.get_by_test_id("stSidebar").get_by_text("Training now")).to_be_visible()
            points = wait_points(page, 0)
            wait_points(page, points)  # still live: the new server's page follows the same worker
            shot(page, "08-train-after-server-restart")
            os.kill(run.pid, signal.SIGKILL)
            expect(page.get_by_text(re.compile("ended unexpectedly"))).to_be_visible(timeout=20_000)
            expect(page.get_by_role("button", name="Stop")).to_have_count(0)
            expect(page.get_by_text("status failed")).to_be_visible()
            shot(page, "09-train-worker-killed")
    finally:
        page.context.close()
        stop_runs(runs_dir)


def _listening(pid: int, port: int) -> set[str]:
    """The addresses that `pid` or its children listen on at `port`."""
    import psutil

    parent = psutil.Process(pid)
    addresses = set()
    for proc in [parent, *parent.children(recursive=True)]:
        for conn in proc.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                addresses.add(conn.laddr.ip)
    return addresses


@pytest.mark.parametrize(
    ("host", "expected", "notice"),
    [(None, {"127.0.0.1"}, False), ("0.0.0.0", {"0.0.0.0"}, True)],
    ids=["default-loopback", "HOST=0.0.0.0"],
)
def test_make_run_listens_on_loopback_unless_asked(tmp_path, monkeypatch, real_data, host, expected, notice):
    monkeypatch.setenv("STUDIO_SPARE_WORKER", "0")
    log = tmp_path / "make-run.log"
    with streamlit_server(tmp_path, log, make=True, host=host) as server:
        port = urllib.parse.urlsplit(server.url).port
        assert _listening(server.proc.pid, port) == expected
        # Shared, it answers this machine's own names too; never another domain's (DNS rebinding).
        machine = socket.gethostname()
        assert _session_opens(server.url, f"localhost:{port}")
        assert _session_opens(server.url, f"{machine}:{port}") == notice
        assert not _session_opens(server.url, f"attacker.test:{port}")
    said = "Sharing the dashboard on the network" in log.read_text()
    assert said == notice, log.read_text()[-2000:]


def _session_opens(url: str, host: str) -> bool:
    """Whether the server opens a session (its websocket, /_stcore/stream) for a request that names
    `host` in its Host header, as a browser does for a page on a domain that resolves to this server."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(
            (
                f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: http://{host}\r\n\r\n"
            ).encode()
        )
        status_line = conn.recv(4096).split(b"\r\n", 1)[0]
    return b" 101 " in status_line


def test_a_page_on_another_domain_gets_no_session_dns_rebinding(server):
    port = urllib.parse.urlsplit(server.url).port
    for name in ("127.0.0.1", "localhost", "[::1]"):
        assert _session_opens(server.url, f"{name}:{port}"), name
    for name in ("attacker.test", "127.0.0.1.attacker.test", "localhost.attacker.test"):
        assert not _session_opens(server.url, f"{name}:{port}"), name
