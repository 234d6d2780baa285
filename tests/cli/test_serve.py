"""``vpp serve`` as a real process: the steps of ``make run`` on an empty SQLite file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

VPP = str(Path(sys.executable).with_name("vpp"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, key: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_serve_answers_health_docs_and_keys(tmp_path: Path) -> None:
    vtn_port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "VAR_DIR": str(tmp_path / "var"),
        "VTN_URL": f"http://127.0.0.1:{vtn_port}/OpenADR2/Simple/2.0b",
    }
    for step in (["db", "upgrade"], ["keys", "dev"]):
        subprocess.run([VPP, *step], env=env, check=True, capture_output=True, timeout=60)
    keys = json.loads((tmp_path / "var" / "dev-keys.json").read_text())
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        server = subprocess.Popen(
            [VPP, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = get(f"{base}/health")
                break
            except OSError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "server did not answer within 60 s"
                time.sleep(0.2)
        assert status == 200 and json.loads(body)["status"] == "ok"
        docs_status, docs = get(f"{base}/docs")
        assert docs_status == 200 and b"swagger" in docs.lower()
        assert get(f"{base}/v1/devices")[0] == 401
        status, body = get(f"{base}/v1/devices", keys["analyst"])
        assert status == 200 and json.loads(body)["total"] == 0
        # The VTN runs beside the API on its own port (OpenADR speaks POST only).
        vtn_status, _ = get(f"http://127.0.0.1:{vtn_port}/OpenADR2/Simple/2.0b/EiRegisterParty")
        assert vtn_status == 405
    finally:
        server.terminate()
        server.wait(timeout=20)
