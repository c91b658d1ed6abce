# SPDX-License-Identifier: MIT
"""A simulated learner: signs in, starts their server, runs code in their own kernel.

Used by the hub tests and `python -m benchmarks.hub`. Everything goes through the public
door (the proxy) the way a browser would: the login form (which also registers a new name),
then a token from the REST API, then the single-user server's REST and kernel websocket API.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
import websocket

HTTP_TIMEOUT = 60.0
WS_TIMEOUT = 120.0


class LearnerError(RuntimeError):
    """The hub or a learner's server did not do what a learner needed."""


@dataclass
class ExecResult:
    """What one execute_request produced: status 'ok' or 'error', stdout text, seconds."""

    status: str
    stdout: str
    seconds: float
    error: str = ""


@dataclass
class Learner:
    hub_url: str
    name: str
    password: str
    session: requests.Session = field(default_factory=requests.Session)
    token: str = ""
    kernel_id: str = ""
    _ws: Any = None

    # ---- hub -----------------------------------------------------------------------------

    def login_form(self, workshop_password: str = "") -> requests.Response:
        """Sign in through the HTML login form (cookies kept in `session`)."""
        self.session.get(f"{self.hub_url}/hub/login", timeout=HTTP_TIMEOUT)
        xsrf = self.session.cookies.get("_xsrf", "")
        return self.session.post(
            f"{self.hub_url}/hub/login?next=", allow_redirects=False, timeout=HTTP_TIMEOUT,
            data={"username": self.name, "password": self.password, "otp": workshop_password,
                  "_xsrf": xsrf})

    def login(self, workshop_password: str = "") -> None:
        """Form login (claims the name on first use), then an API token for the rest."""
        reply = self.login_form(workshop_password)
        if reply.status_code != 302:
            raise LearnerError(f"{self.name}: login refused ({reply.status_code})")
        reply = requests.post(
            f"{self.hub_url}/hub/api/users/{self.name}/tokens", timeout=HTTP_TIMEOUT,
            json={"auth": {"username": self.name, "password": self.password},
                  "note": "pvlab learner"})
        if reply.status_code != 201 and reply.status_code != 200:
            raise LearnerError(f"{self.name}: token refused ({reply.status_code})")
        self.token = reply.json()["token"]

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request with this learner's token (path starts with /hub/ or /user/)."""
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.hub_url}{path}", headers=headers,
                                timeout=HTTP_TIMEOUT, **kwargs)

    def start_server(self, timeout: float = 180.0) -> float:
        """Ask the hub for this learner's server; seconds until it is ready."""
        started = time.monotonic()
        self.request_server()
        return self.wait_ready(started, timeout)

    def request_server(self) -> None:
        """Ask the hub to start this learner's server (do not wait)."""
        reply = self.api("POST", f"/hub/api/users/{self.name}/server")
        if reply.status_code not in (201, 202, 400):  # 400: already running
            raise LearnerError(f"{self.name}: spawn refused ({reply.status_code}: "
                               f"{reply.text[:200]})")

    def wait_ready(self, started: float, timeout: float = 180.0) -> float:
        """Wait until the server is ready; seconds since `started` (a time.monotonic())."""
        while time.monotonic() - started < timeout:
            model = self.api("GET", f"/hub/api/users/{self.name}").json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return time.monotonic() - started
            time.sleep(0.25)
        raise LearnerError(f"{self.name}: server not ready after {timeout:.0f} s")

    def stop_server(self, timeout: float = 60.0) -> None:
        self.close_kernel_socket()
        self.api("DELETE", f"/hub/api/users/{self.name}/server")
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            model = self.api("GET", f"/hub/api/users/{self.name}").json()
            if not model.get("servers"):
                return
            time.sleep(0.25)
        raise LearnerError(f"{self.name}: server still running after {timeout:.0f} s")

    def server_path(self, owner: str | None = None) -> str:
        return f"/user/{owner or self.name}"

    # ---- files ---------------------------------------------------------------------------

    def get_file(self, path: str, owner: str | None = None) -> requests.Response:
        return self.api("GET", f"{self.server_path(owner)}/api/contents/{path}")

    def put_notebook(self, path: str, notebook: dict[str, Any]) -> requests.Response:
        return self.api("PUT", f"{self.server_path()}/api/contents/{path}",
                        json={"type": "notebook", "format": "json", "content": notebook})

    # ---- kernel --------------------------------------------------------------------------

    def start_kernel(self, owner: str | None = None) -> str:
        reply = self.api("POST", f"{self.server_path(owner)}/api/kernels",
                         json={"name": "python3"})
        if reply.status_code != 201:
            raise LearnerError(f"{self.name}: kernel refused ({reply.status_code})")
        self.kernel_id = reply.json()["id"]
        ws_url = self.hub_url.replace("http", "ws", 1)
        url = f"{ws_url}{self.server_path(owner)}/api/kernels/{self.kernel_id}/channels"
        # JupyterLab retries a kernel connection that times out; so does this learner, once.
        for attempt in (1, 2):
            try:
                self._ws = websocket.create_connection(
                    url, header=[f"Authorization: token {self.token}"], timeout=WS_TIMEOUT)
                break
            except websocket.WebSocketTimeoutException:
                if attempt == 2:
                    raise
        return self.kernel_id

    def close_kernel_socket(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def execute(self, code: str, timeout: float = 120.0) -> ExecResult:
        """Run `code` in this learner's kernel; wait for its reply and idle status."""
        if self._ws is None:
            raise LearnerError(f"{self.name}: no kernel (call start_kernel first)")
        msg_id = uuid.uuid4().hex
        message = {
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.name,
                       "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }
        started = time.monotonic()
        self._ws.send(json.dumps(message))
        stdout: list[str] = []
        status, error, idle, replied = "", "", False, False
        while not (idle and replied):
            if time.monotonic() - started > timeout:
                raise LearnerError(f"{self.name}: no reply after {timeout:.0f} s")
            msg = json.loads(self._ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            content = msg.get("content", {})
            if kind == "stream" and content.get("name") == "stdout":
                stdout.append(content.get("text", ""))
            elif kind == "error":
                error = f"{content.get('ename')}: {content.get('evalue')}"
            elif kind == "execute_reply":
                status, replied = content.get("status", ""), True
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
        return ExecResult(status, "".join(stdout), time.monotonic() - started, error)


# ---- the scenario-lab actions every simulated learner performs --------------------------------

#: Sets up the seed story of notebooks/06-scenario-lab.ipynb in the learner's kernel.
LAB_SETUP = """\
from pvlab.ui import Lab
lab = Lab()
lab.allocate("l3", above="4GiB")
lab.allocate("l2")
lab.set_entry("l3", 3, "l2", "P")
lab.set_vcpu0_initialised(True)
lab.w_op_frame.value = "l3"
print(lab.status_kind)
"""

_STATUS = '\nprint(f"[{lab.status_kind}] {lab.status_text}")'

#: (action, code, a substring the printed status must contain): as the notebook's clicks.
LAB_ACTIONS: list[tuple[str, str, str]] = [
    ("toggle bitness", "lab.set_bitness(32)" + _STATUS, "bitness 32"),
    ("pin", 'lab.pin("l3", 3)' + _STATUS, "ERANGE"),
    ("toggle assist", 'lab.set_vm_assist("pae_extended_cr3", True)' + _STATUS, "[ok]"),
    ("allocate", 'lab.allocate("l1")' + _STATUS, "allocated l1"),
    ("undo", "lab.undo()" + _STATUS, "undone"),
]


def run_lab_actions(learner: Learner) -> list[tuple[str, float]]:
    """Run LAB_SETUP then LAB_ACTIONS in the learner's kernel: (action, seconds) each.

    Raises LearnerError when an action fails or prints the wrong status.
    """
    setup = learner.execute(LAB_SETUP)
    if setup.status != "ok":
        raise LearnerError(f"{learner.name}: lab setup failed: {setup.error}")
    timings = []
    for action, code, expected in LAB_ACTIONS:
        result = learner.execute(code)
        if result.status != "ok" or expected not in result.stdout:
            raise LearnerError(f"{learner.name}: {action} printed {result.stdout!r} "
                               f"{result.error}; expected {expected!r}")
        timings.append((action, result.seconds))
    return timings
