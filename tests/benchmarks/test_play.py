"""The play server: the page in headless Chromium (keyboard, expert run, video), the API and its refusals."""

import http.client
import io
import json
import logging
import math
import os
import shutil
import socket
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from agents import make_agent
from benchmarks.play import MAX_BODY_BYTES, PlaySession, check_host, load_play_agent, main, start_server

SIZE = 64
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def session(tiny_dataset, tmp_path_factory):
    s = PlaySession(tiny_dataset / "val_unseen", size=SIZE, output_dir=tmp_path_factory.mktemp("videos"))
    yield s
    s.close()


def _serve(session, client):
    """Run ``client(url)`` on a thread while this thread, where the session renders, does the env work."""
    server = start_server(session, port=0)
    try:
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(client, server.url)
            server.jobs.work(until=future.done)
            return future.result()
    finally:
        server.shutdown()
        server.server_close()


def _request(url, method, path, body=None, raw=None, headers=None):
    """(status, content type, decoded JSON or bytes) of one request; ``raw`` bytes are sent as they are."""
    conn = http.client.HTTPConnection(urlsplit(url).netloc, timeout=60)
    payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=payload, headers=headers or {"Content-Type": "application/json"})
    response = conn.getresponse()
    data, kind = response.read(), response.getheader("Content-Type")
    conn.close()
    return response.status, kind, json.loads(data) if kind == "application/json" else data


def _api(url, path, body=None):
    status, _, data = _request(url, "GET" if body is None else "POST", path, body)
    assert status == 200, data
    return data


def _chromium():
    path = os.environ.get("NAVGYM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Chromium not installed (scripts/install_browser_deps.sh installs it)")
    pytest.importorskip("playwright.sync_api", reason="Playwright not installed (pip install playwright)")
    return path


def test_page_drives_the_agent_in_headless_chromium(session):
    chromium = _chromium()

    def client(url):
        from playwright.sync_api import sync_playwright

        start = _api(url, "/api/reset", {"seed": 0})
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(url)
            page.wait_for_function(f"document.body.dataset.frame === '{start['frame']}'")
            assert page.inner_text("#instruction") == start["instruction"]
            assert page.locator("#agent-step").is_disabled() and page.locator("#agent-run").is_disabled()
            rgb_before = page.locator("#rgb").screenshot()

            # The key of the expert's first move: the view must change whichever it is.
            page.keyboard.press({"FORWARD": "w", "LEFT": "a", "RIGHT": "d"}[start["expert_action"]])
            page.wait_for_function(f"document.body.dataset.frame === '{start['frame'] + 1}'")
            moved = _api(url, "/api/state")
            assert page.inner_text("#step") == "1" and moved["step"] == 1
            assert moved["controller"] == "keyboard" and moved["last_action"] == start["expert_action"]
            shift = np.linalg.norm(np.subtract(moved["position"], start["position"]))
            turn = abs(moved["heading_deg"] - start["heading_deg"]) % 360
            if start["expert_action"] == "FORWARD":
                assert shift == pytest.approx(0.25, abs=0.01)
            else:
                assert min(turn, 360 - turn) == pytest.approx(15, abs=1e-3)
            assert page.locator("#rgb").screenshot() != rgb_before

            page.click("#expert-run")
            page.wait_for_function("document.getElementById('status').textContent === 'success'")
            assert page.inner_text("#m-success") == "1"
            done = _api(url, "/api/state")
            assert done["done"] and done["metrics"]["success"] == 1.0 and done["last_action"] == "STOP"
            assert page.locator("#expert-step").is_disabled()

            page.click("#save-video")
            page.wait_for_function("document.getElementById('video-path').textContent.endsWith('.mp4')")
            video = Path(page.inner_text("#video-path"))
            assert str(video) in page.inner_text("#message")
            browser.close()
        assert errors == []
        return video, done

    video, done = _serve(session, client)
    assert video.is_file() and video.parent == session.output_dir.resolve()
    with imageio.get_reader(video) as reader:
        n_frames, first = reader.count_frames(), reader.get_data(0)
    assert n_frames == done["step"] + 1  # the reset frame and one per step
    assert first.shape[0] > SIZE and first.shape[1] > 2 * SIZE  # views, map and the caption


def test_api_steps_runs_resets_and_serves_images(session):
    def client(url):
        first, second = (e["episode_id"] for e in _api(url, "/api/episodes")["episodes"])
        seeded = [_api(url, "/api/reset", {"seed": 0})["episode_id"] for _ in range(2)]
        assert seeded[0] == seeded[1]
        state = _api(url, "/api/reset", {"episode_id": second})
        assert (state["episode_id"], state["step"], state["done"]) == (second, 0, False)
        assert state["controller"] is None and state["metrics"]["success"] == 0.0
        turned = _api(url, "/api/step", {"action": 2})
        assert math.isclose((turned["heading_deg"] - state["heading_deg"]) % 360, 15, abs_tol=1e-3)
        hint = turned["expert_action"]
        stepped = _api(url, "/api/step", {"controller": "expert"})
        assert (stepped["step"], stepped["last_action"], stepped["controller"]) == (2, hint, "expert")
        partial = _api(url, "/api/run", {"controller": "expert", "max_steps": 3})
        assert partial["ran"] == 3 and partial["step"] == 5
        finished = _api(url, "/api/run", {"controller": "expert"})
        assert finished["done"] and finished["metrics"]["success"] == 1.0
        assert finished["metrics"]["distance_to_goal"] < 3.0 and 0 < finished["metrics"]["spl"] <= 1
        status, _, error = _request(url, "POST", "/api/step", {"action": 1})
        assert status == 409 and "reset" in error["error"]
        images = {k: _request(url, "GET", f"/frame/{k}.png?v=1") for k in ("rgb", "depth", "map", "frame")}
        saved = _api(url, "/api/video", {})
        return first, images, saved, finished

    first, images, saved, finished = _serve(session, client)
    assert first == session.episode_ids[0]
    sizes = {}
    for name, (status, kind, data) in images.items():
        assert status == 200 and kind == "image/png" and data[:8] == b"\x89PNG\r\n\x1a\n"
        sizes[name] = Image.open(io.BytesIO(data)).size
    assert sizes["rgb"] == sizes["depth"] == (SIZE, SIZE) and sizes["map"][1] == SIZE
    assert sizes["frame"][0] == 2 * SIZE + sizes["map"][0] and sizes["frame"][1] > SIZE  # + caption
    assert saved["frames"] == finished["step"] + 1 and Path(saved["path"]).is_file()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("POST", "/api/step", b'{"action": 1', 400, "malformed JSON"),
        ("POST", "/api/step", b"[1, 2]", 400, "must be an object"),
        ("POST", "/api/step", {"action": 7}, 400, "'action' must be an integer 0..3"),
        ("POST", "/api/step", {"action": True}, 400, "'action' must be an integer"),
        ("POST", "/api/step", {"action": "1"}, 400, "'action' must be an integer"),
        ("POST", "/api/step", {"action": 1, "speed": 2}, 400, "unknown field(s) ['speed']"),
        ("POST", "/api/step", {}, 400, "exactly one of"),
        ("POST", "/api/step", {"action": 1, "controller": "expert"}, 400, "exactly one of"),
        ("POST", "/api/step", {"controller": "agent"}, 400, "--checkpoint"),
        ("POST", "/api/step", {"controller": "human"}, 400, "'controller' must be one of"),
        ("POST", "/api/run", {}, 400, "missing field(s) ['controller']"),
        ("POST", "/api/run", {"controller": "expert", "max_steps": 0}, 400, "'max_steps'"),
        ("POST", "/api/reset", {"episode_id": "no-such-episode"}, 404, "'no-such-episode'"),
        ("POST", "/api/reset", {"seed": -1}, 400, "'seed'"),
        ("POST", "/api/video", {"fps": 30}, 400, "unknown field(s) ['fps']"),
        ("POST", "/api/nothing", {}, 404, "/api/nothing"),
        ("POST", "/api/state", {}, 405, "/api/state"),
        ("GET", "/api/step", None, 405, "POST"),
        ("GET", "/api/nothing", None, 404, "not found"),
        ("GET", "/frame/secret.png", None, 404, "unknown image"),
        ("GET", "/static/../play.py", None, 404, "not found"),
        ("GET", "/static/%2e%2e/play.py", None, 404, "not found"),
        ("GET", "/static/..%2fplay.py", None, 404, "not found"),
        ("GET", "/static//etc/passwd", None, 404, "not found"),
        ("GET", "/../benchmarks/play.py", None, 404, "not found"),
        ("GET", "/play.py", None, 404, "not found"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(session, method, path, body, status, words):
    def client(url):
        before = _api(url, "/api/reset", {"seed": 0})
        raw = body if isinstance(body, bytes) else None
        answer = _request(url, method, path, None if raw is not None else body, raw=raw)
        return before, answer, _api(url, "/api/state")

    before, (got, kind, data), after = _serve(session, client)
    assert got == status and kind == "application/json"
    assert words in data["error"]
    assert after["step"] == before["step"] == 0  # nothing moved


def test_oversized_bodies_are_refused_unread(session):
    def client(url):
        conn = http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)
        conn.putrequest("POST", "/api/step")
        conn.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
        conn.endheaders()
        response = conn.getresponse()
        answer = response.status, json.loads(response.read())
        conn.close()
        return answer, _request(url, "GET", "/")

    (status, data), (page_status, kind, page) = _serve(session, client)
    assert status == 413 and str(MAX_BODY_BYTES) in data["error"]
    assert page_status == 200 and kind == "text/html" and b"NavGym" in page


def test_agent_controller_sees_every_step(tiny_dataset, tmp_path):
    make_agent("forward", {"n_forward": 2}).save(tmp_path / "agent")
    agent, label = load_play_agent(str(tmp_path / "agent"))
    s = PlaySession(tiny_dataset / "val_unseen", None, agent, label, size=SIZE, output_dir=tmp_path)

    def client(url):
        assert _api(url, "/api/state")["agent"] == label
        first = _api(url, "/api/step", {"controller": "agent"})
        keyed = _api(url, "/api/step", {"action": 3})
        # The agent also acted on the keyboard's step, so its two forward steps are used up: it stops now.
        last = _api(url, "/api/run", {"controller": "agent", "max_steps": 5})
        return first, keyed, last

    try:
        first, keyed, last = _serve(s, client)
    finally:
        s.close()
    assert (first["last_action"], first["controller"]) == ("FORWARD", "agent")
    assert keyed["last_action"] == "RIGHT" and keyed["controller"] == "keyboard"
    assert (last["ran"], last["last_action"], last["done"], last["step"]) == (1, "STOP", True, 3)


def test_load_play_agent_accepts_builtin_names_and_rejects_others(tmp_path):
    agent, label = load_play_agent("random")
    assert agent.name == label == "random"
    with pytest.raises(ValueError, match="trainable"):
        load_play_agent("cma")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_play_agent(str(tmp_path / "missing"))


def test_only_loopback_hosts_without_allow_remote(caplog):
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_host(host)
    for host in ("0.0.0.0", "192.168.1.5", "example.org"):
        with pytest.raises(ValueError, match="--allow-remote"):
            check_host(host)
    with caplog.at_level(logging.WARNING, logger="benchmarks.play"):
        check_host("0.0.0.0", allow_remote=True)
    assert "0.0.0.0" in caplog.text
    with pytest.raises(ValueError, match="--allow-remote"):
        main(["--host", "0.0.0.0", "--port", "0"])  # refused before anything is built


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("path", ["/api/step", "/api/reset"])
@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({**JSON, "Origin": "http://evil.example"}, 403, "http://evil.example"),
        ({**JSON, "Origin": "null"}, 403, "'null'"),
        ({**JSON, "Host": "evil.example:{port}"}, 403, "evil.example"),
        ({"Content-Type": "text/plain"}, 415, "application/json"),
        ({"Accept": "*/*"}, 415, "application/json"),
        (
            {"Content-Type": "text/plain", "Origin": "http://evil.example", "Host": "evil.example:{port}"},
            403,
            "Host",
        ),
    ],
    ids=["foreign-origin", "null-origin", "foreign-host", "text-plain", "no-content-type", "all-three"],
)
def test_requests_from_other_pages_are_refused(session, path, headers, status, words):
    def client(url):
        before = _api(url, "/api/reset", {"seed": 0})
        port = urlsplit(url).port
        sent = {k: v.format(port=port) for k, v in headers.items()}
        body = b'{"action": 1}' if path == "/api/step" else b"{}"
        answer = _request(url, "POST", path, raw=body, headers=sent)
        return before, answer, _api(url, "/api/state")

    before, (got, kind, data), after = _serve(session, client)
    assert (got, kind) == (status, "application/json") and words in data["error"]
    assert (
        after["step"] == before["step"] == 0 and after["episode_id"] == before["episode_id"]
    )  # nothing moved


def test_same_origin_and_local_host_names_are_accepted_and_reads_check_the_host(session):
    def client(url):
        netloc = urlsplit(url).netloc
        port = urlsplit(url).port
        same = {**JSON, "Origin": f"http://{netloc}"}
        local = {**JSON, "Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
        rebound = _request(url, "GET", "/api/state", headers={"Host": f"attacker.example:{port}"})
        return (
            _request(url, "POST", "/api/reset", {"seed": 0}, headers=same),
            _request(url, "POST", "/api/step", {"action": 2}, headers=local),
            rebound,
        )

    same, local, rebound = _serve(session, client)
    assert same[0] == 200 and local[0] == 200 and local[2]["step"] == 1
    assert rebound[0] == 403 and "attacker.example" in rebound[2]["error"]  # DNS rebinding reads nothing


@pytest.mark.parametrize("body", [b"[" * 60000, b'{"a":' * 12000], ids=["arrays", "objects"])
def test_deeply_nested_json_is_a_400(session, body, caplog):
    def client(url):
        return _request(url, "POST", "/api/step", raw=body)

    with caplog.at_level(logging.ERROR, logger="benchmarks.play_server"):
        status, kind, data = _serve(session, client)
    assert (status, kind) == (400, "application/json") and "nested too deeply" in data["error"]
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


def test_oversized_and_abandoned_bodies_are_answered_without_a_traceback(session, caplog, capfd):
    big = 4 * 1024 * 1024

    def client(url):
        host, port = urlsplit(url).hostname, urlsplit(url).port
        head = f"POST /api/step HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        head = (head + f"Content-Length: {big}\r\n\r\n").encode()
        with socket.create_connection((host, port), timeout=30) as sock:  # sends it all, then reads
            sock.sendall(head + b" " * big)
            answer = sock.makefile("rb").readline()
        for _ in range(3):  # hangs up (reset) while the server answers
            sock = socket.create_connection((host, port), timeout=30)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.sendall(head + b" " * 100_000)
            sock.close()
        return answer, _api(url, "/api/state")

    with caplog.at_level(logging.DEBUG, logger="benchmarks.play_server"):
        answer, state = _serve(session, client)
    assert answer.startswith(b"HTTP/1.1 413") and state["episode_id"]
    assert "Traceback" not in caplog.text + capfd.readouterr().err


def test_the_viewer_reads_the_agents_declarations(tiny_dataset, tmp_path):
    waypoints = make_agent("expert", {"action_mode": "waypoint"})
    with pytest.raises(ValueError, match="the viewer drives discrete actions"):
        PlaySession(tiny_dataset / "val_unseen", agent=waypoints, size=SIZE, output_dir=tmp_path)
    expert = make_agent("expert")
    session = PlaySession(tiny_dataset / "val_unseen", agent=expert, size=SIZE, output_dir=tmp_path)
    try:
        state = session.run("agent")  # the expert's action reaches it because it declares requires_expert
        assert state["done"]
    finally:
        session.close()
