"""A real `airflow api-server` for tests: its own AIRFLOW_HOME, this repo's plugins, a given ledger.

    server = start_api_server(tmp_path / "airflow", ledger_url="sqlite:////.../patchpipe.db")
    token = server.login("admin")        # POST /auth/token with the simple auth manager's password
    requests.get(server.url + "/patchpipe/api/fleet", headers={"Authorization": f"Bearer {token}"})
    server.stop()

Auth is Airflow's simple auth manager with its default user ``admin`` (role admin), whose password
the api-server generates into ``simple_auth_manager_passwords.json.generated``. ``all_admins=True``
turns on ``[core] simple_auth_manager_all_admins``, where every request is an admin. The JWT secret
is fixed (``JWT_SECRET``) so a test can forge an expired token that is otherwise valid.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
JWT_SECRET = "patchpipe-test-jwt-secret-do-not-use-" * 2  # 70 bytes: long enough for HS512


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def airflow_env(home: Path, ledger_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
        "PATCHPIPE_DB": ledger_url,
        **extra,
    }


def migrate(home: Path, ledger_url: str) -> None:
    """`airflow db migrate` of the metadata database under ``home`` (once per home)."""
    home.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=airflow_env(home, ledger_url),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"airflow db migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


@dataclass
class ApiServer:
    home: Path
    url: str
    process: subprocess.Popen
    log_path: Path
    _log: object = field(repr=False)

    def password(self, user: str = "admin") -> str:
        return json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())[user]

    def login(self, user: str = "admin") -> str:
        """A JWT for ``user``, as the UI's login form gets it."""
        answer = requests.post(f"{self.url}/auth/token", json={"username": user, "password": self.password(user)},
                               timeout=30)
        assert answer.status_code == 201, f"login as {user} failed: {answer.status_code} {answer.text}"
        return answer.json()["access_token"]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._log.close()


def start_api_server(home: Path, ledger_url: str, *, all_admins: bool = False, name: str = "api-server",
                     scrape_token: str | None = None, ready_seconds: float = 180) -> ApiServer:
    """Start `airflow api-server` on a free port of 127.0.0.1 and wait until it answers.

    ``scrape_token`` is the password of the ``patchpipe_metrics`` connection: the token Prometheus sends.
    """
    port = free_port()
    extra_env = {} if scrape_token is None else {
        "AIRFLOW_CONN_PATCHPIPE_METRICS": f'{{"conn_type": "generic", "password": "{scrape_token}"}}'}
    env = airflow_env(home, ledger_url, AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=str(all_admins), **extra_env)
    log_path = home / f"{name}.log"
    log = open(log_path, "w")
    process = subprocess.Popen([str(BIN / "airflow"), "api-server", "--port", str(port), "--host", "127.0.0.1"],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    server = ApiServer(home, f"http://127.0.0.1:{port}", process, log_path, log)
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise AssertionError(f"the api-server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if requests.get(f"{server.url}/api/v2/monitor/health", timeout=5).ok:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.5)
    server.stop()
    raise AssertionError(f"the api-server did not answer within {ready_seconds:.0f}s:\n{server.log_tail()}")
