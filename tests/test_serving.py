"""Production serving: the gunicorn command `atvira serve --production` runs, really started."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from directory.config import Settings
from directory.derived import refresh_derived
from directory.serving import CONFIG, ROOT, gunicorn_command, gunicorn_environment
from directory.store import connect
from directory.sync import apply_records
from tests.conftest import facility
from tests.servers import TEST_SECRET_KEY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_command_and_environment(tmp_path):
    cmd = gunicorn_command()
    assert cmd[1:] == ["-m", "gunicorn", "-c", str(CONFIG), "app:create_app()"]
    env = gunicorn_environment(Settings(db=Path("rel/store.db")), port=8123, workers=3, base={})
    assert env["ATVIRA_DB"] == str(Path("rel/store.db").resolve())  # workers may run elsewhere
    assert (env["ATVIRA_HOST"], env["ATVIRA_PORT"], env["ATVIRA_WORKERS"]) == ("127.0.0.1", "8123", "3")
    assert env["ATVIRA_PRIVATE_DB"] == str(Path("rel/store.private.db").resolve())
    assert env["PYTHONPATH"].split(":")[0] == str(ROOT)


def test_gunicorn_serves_the_api_read_only(db_path, tmp_path):
    conn = connect(db_path)
    apply_records(conn, [facility("1", name="Žiogelis"), facility("2")], source="test", scope="t")
    # everything derived, snapshot included: the server's start then finds nothing to repair
    refresh_derived(conn, Settings(db=db_path))
    conn.close()
    before = db_path.stat().st_mtime_ns
    port = _free_port()
    env = gunicorn_environment(Settings(db=db_path), port=port, workers=2)
    env["ATVIRA_SECRET_KEY"] = TEST_SECRET_KEY  # gunicorn.conf.py is production: it refuses to start without one
    env["ATVIRA_TRUSTED_HOSTS"] = "127.0.0.1,atvira.example"  # the proxy's Host below is a trusted one
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(gunicorn_command(), env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/api/facilities?q=ziogelis"
        body = None
        deadline = time.monotonic() + 90  # bounded; generous, as a busy CI machine boots workers slowly
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                resp = requests.get(url, timeout=30)
                body = resp.json()
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert body is not None, log.read_text()
        assert body["numberReturned"] == 1 and body["features"][0]["properties"]["name"] == "Žiogelis"
        bad = requests.get(f"http://127.0.0.1:{port}/api/facilities?limit=0", timeout=5)
        assert bad.status_code == 400 and bad.json()["where"] == "limit"
        # Behind a trusted proxy that terminated TLS, next links stay https.
        page = requests.get(f"http://127.0.0.1:{port}/api/facilities?limit=1",
                            headers={"X-Forwarded-Proto": "https", "Host": "atvira.example"}, timeout=5).json()
        assert page["next"].startswith("https://atvira.example/api/facilities?")
    finally:
        proc.terminate()
        try:
            # gunicorn gives a worker graceful_timeout (30 s) to finish, then kills it: wait past
            # that, and say what its log shows if it still has not gone.
            proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            pytest.fail("gunicorn did not stop within 45 s of SIGTERM:\n" + log.read_text()[-4000:])
    assert proc.returncode == 0, log.read_text()
    assert "was sent SIGKILL" not in log.read_text()  # every worker stopped by itself
    text = log.read_text()
    assert "Booting worker" in text and "gthread" in text
    assert db_path.stat().st_mtime_ns == before  # readers never write the store
