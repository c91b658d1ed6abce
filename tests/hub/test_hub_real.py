# SPDX-License-Identifier: MIT
"""The real workshop hub with four learners: lab actions, isolation, safety, nothing lost.

One hub (JupyterHub + configurable-http-proxy) is started for the module; the tests run in
file order and share it (learners sign in once). About a minute on a 2-core machine.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("requests")
pytest.importorskip("websocket")

from pvlab.hub.accounts import per_learner_accounts  # noqa: E402
from pvlab.hub.learner import Learner, LearnerError, run_lab_actions  # noqa: E402

HubUnderTest = Any  # the conftest's dataclass (conftest modules are not importable by name)
WORKSHOP_PASSWORD = "workshop-password-for-tests"
ADMIN_PASSWORD = "admin-password-for-the-tests-0123"
ADMIN = "organiser"
LEARNERS = ("ada", "bob", "cy", "dee")
PASSWORDS = {name: f"{name}-own-password" for name in LEARNERS}
_signed_in: dict[str, Learner] = {}


def test_the_fixture_uses_these_passwords(running_hub: HubUnderTest) -> None:
    assert (running_hub.workshop_password, running_hub.admin_password, running_hub.admin,
            running_hub.learners) == (WORKSHOP_PASSWORD, ADMIN_PASSWORD, ADMIN, LEARNERS)


def learner(hub: HubUnderTest, name: str) -> Learner:
    if name not in _signed_in or _signed_in[name].hub_url != hub.url:
        person = Learner(hub.url, name, PASSWORDS[name])
        person.login(WORKSHOP_PASSWORD)
        _signed_in[name] = person
    return _signed_in[name]


def test_four_learners_sign_in_start_and_run_the_lab_actions(running_hub: HubUnderTest) -> None:
    started = time.monotonic()
    for name in LEARNERS:  # all four ask at once, as a room does
        learner(running_hub, name).request_server()
    for name in LEARNERS:
        assert _signed_in[name].wait_ready(started) > 0
    with ThreadPoolExecutor(len(LEARNERS)) as pool:  # the four work side by side
        list(pool.map(lambda name: _check_own_server(running_hub, _signed_in[name]), LEARNERS))


def _check_own_server(running_hub: HubUnderTest, person: Learner) -> None:
    listing = person.get_file("notebooks").json()
    assert "06-scenario-lab.ipynb" in {item["name"] for item in listing["content"]}
    assert person.get_file("exercises").status_code == 200
    assert person.get_file("solutions").status_code == 404, "solutions must not ship"
    person.start_kernel()
    timings = run_lab_actions(person)
    assert [action for action, _ in timings] == [
        "toggle bitness", "pin", "toggle assist", "allocate", "undo"]
    cwd = person.execute("import os; print(os.getcwd())").stdout.strip()
    assert cwd == str(running_hub.state_dir.resolve() / "homes" / person.name)


def test_a_learner_cannot_reach_another_learners_server(running_hub: HubUnderTest) -> None:
    ada, bob = learner(running_hub, "ada"), learner(running_hub, "bob")
    # Files: read, list, write; with ada's token on bob's server, through the proxy.
    for path in ("", "notebooks", "notebooks/06-scenario-lab.ipynb"):
        assert ada.get_file(path, owner="bob").status_code in (403, 404)
    reply = ada.api("PUT", "/user/bob/api/contents/evil.txt",
                    json={"type": "file", "format": "text", "content": "x"})
    assert reply.status_code in (403, 404)
    # Kernels: list, start, and the websocket of bob's kernel.
    assert ada.api("GET", "/user/bob/api/kernels").status_code in (403, 404)
    assert ada.api("POST", "/user/bob/api/kernels", json={}).status_code in (403, 404)
    with pytest.raises(Exception):  # noqa: B017 - the websocket handshake is refused
        ada.start_kernel(owner="bob")
    ada.close_kernel_socket()
    ada.start_kernel()  # ada's own still works
    # With ada's browser cookies instead of a token: the hub sends her away from bob's server.
    page = ada.session.get(f"{running_hub.url}/user/bob/lab", allow_redirects=True)
    assert "/user/bob/" not in page.url or page.status_code in (403, 404)
    # The hub API: bob's user model, his server, his tokens.
    assert ada.api("GET", "/hub/api/users/bob").status_code in (403, 404)
    assert ada.api("DELETE", "/hub/api/users/bob/server").status_code in (403, 404)
    assert ada.api("POST", "/hub/api/users/bob/tokens", json={}).status_code in (403, 404)
    assert bob.api("GET", "/hub/api/users/bob").status_code == 200


NOT_ROOT = ("the hub is not running as root here, so every learner's server runs under one "
            "account and a kernel CAN read other learners' files (pvlab hub warns so); file "
            "isolation needs root (CI runs as root)")


def test_a_learners_kernel_cannot_read_another_learners_files(
        running_hub: HubUnderTest) -> None:
    if not per_learner_accounts():
        pytest.skip(NOT_ROOT)
    from pvlab.hub.spawner import NPROC_LIMIT

    ada = learner(running_hub, "ada")
    state = running_hub.state_dir.resolve()
    bob_home = state / "homes" / "bob"
    attempts = {  # what ada's code tries: (how, path)
        "read": ("read", str(bob_home / "notebooks/06-scenario-lab.ipynb")),
        "list": ("list", str(bob_home)),
        "list homes": ("list", str(bob_home.parent)),
        "write": ("write", str(bob_home / "planted.txt")),
        "plant a picture": ("write", str(state / "render-cache" / "x.svg")),
        "read the database": ("read", str(state / "jupyterhub.sqlite")),
    }
    code = f"""
import getpass, os, resource
print("user", getpass.getuser())
print("nproc", resource.getrlimit(resource.RLIMIT_NPROC))
for what, (how, path) in {attempts!r}.items():
    try:
        if how == "list":
            os.listdir(path)
        else:
            open(path, "w" if how == "write" else "rb").close()
        print(what, "ALLOWED")
    except PermissionError:
        print(what, "PermissionError")
"""
    ada.close_kernel_socket()
    ada.start_kernel()
    out = ada.execute(code).stdout
    assert "user pvlab-ada" in out, out
    assert f"nproc ({NPROC_LIMIT}, {NPROC_LIMIT})" in out, out  # a fork bomb stops there
    for what in attempts:
        assert f"{what} PermissionError" in out, out
    assert not (bob_home / "planted.txt").exists()
    import pwd

    assert bob_home.stat().st_uid == pwd.getpwnam("pvlab-bob").pw_uid
    assert stat.S_IMODE(bob_home.stat().st_mode) == 0o700


def test_pictures_come_from_the_shared_render_cache(running_hub: HubUnderTest) -> None:
    # ada and bob ran the same lab actions: the second of them to draw a state finds it.
    ada = learner(running_hub, "ada")
    ada.close_kernel_socket()
    ada.start_kernel()
    run_lab_actions(ada)  # a fresh kernel: every picture was drawn before by someone
    got = ada.execute("from pvlab.render import cache; print(cache.stats())").stdout
    stats = json.loads(got.replace("'", '"'))
    assert stats["hits"] > 0 and stats["misses"] == 0 and stats["errors"] == 0, stats
    entries = list((running_hub.state_dir / "render-cache").glob("??/*.svg"))
    assert entries and all(e.read_text().lstrip().startswith("<?xml") for e in entries[:5])


def test_a_learner_cannot_use_the_admin_api(running_hub: HubUnderTest) -> None:
    ada = learner(running_hub, "ada")
    assert ada.api("GET", "/hub/api/users").status_code == 403
    assert ada.api("POST", "/hub/api/users/mallory").status_code in (403, 404)
    assert ada.api("GET", "/hub/api/proxy").status_code == 403
    assert ada.api("POST", "/hub/api/shutdown").status_code == 403
    admin_page = ada.session.get(f"{running_hub.url}/hub/admin", allow_redirects=False)
    assert admin_page.status_code in (403, 404)


def test_the_admin_name_is_claimed_only_with_the_admin_password(
        running_hub: HubUnderTest) -> None:
    squatter = Learner(running_hub.url, ADMIN, "squatter-password")
    with pytest.raises(LearnerError, match="login refused"):
        squatter.login(WORKSHOP_PASSWORD)
    organiser = Learner(running_hub.url, ADMIN, "organiser-own-password")
    organiser.login(ADMIN_PASSWORD)
    reply = organiser.api("GET", "/hub/api/users")
    assert reply.status_code == 200
    assert set(LEARNERS) <= {user["name"] for user in reply.json()}
    assert organiser.session.get(f"{running_hub.url}/hub/admin").status_code == 200


def test_wrong_passwords_are_refused(running_hub: HubUnderTest) -> None:
    url = running_hub.url
    # A new name with a wrong workshop password, or none.
    assert Learner(url, "eve", "eve-own-password").login_form("not-the-password").status_code == 403
    assert Learner(url, "eve", "eve-own-password").login_form("").status_code == 403
    # An existing learner: her own password only; the workshop password does not open it.
    assert Learner(url, "ada", "wrong-password").login_form().status_code == 403
    assert Learner(url, "ada", WORKSHOP_PASSWORD).login_form(WORKSHOP_PASSWORD).status_code == 403
    # A personal password shorter than 8 characters is refused at the first sign-in.
    assert Learner(url, "fay", "short").login_form(WORKSHOP_PASSWORD).status_code == 403
    assert Learner(url, "ada", PASSWORDS["ada"]).login_form().status_code == 302


def test_cookies_are_httponly(running_hub: HubUnderTest) -> None:
    ada = Learner(running_hub.url, "ada", PASSWORDS["ada"])
    reply = ada.login_form()
    assert reply.status_code == 302
    set_cookies = reply.raw.headers.getlist("Set-Cookie")
    login_cookies = [c for c in set_cookies if c.startswith("jupyterhub-")]
    assert login_cookies, set_cookies
    for cookie in login_cookies:
        assert "httponly" in cookie.lower(), cookie


def test_everything_listens_on_loopback_only(running_hub: HubUnderTest) -> None:
    psutil = pytest.importorskip("psutil")
    hub_proc = psutil.Process(running_hub.hub.proc.pid)  # type: ignore[attr-defined]
    family = hub_proc.children(recursive=True) + [hub_proc]
    listening = []
    for proc in family:
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    listening.append((proc.name(), conn.laddr.ip, conn.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    ports = {port for _, _, port in listening}
    assert running_hub.port in ports, listening  # the proxy's public port
    assert len(ports) >= 3 + len(LEARNERS), listening  # proxy, proxy API, hub, servers
    assert {ip for _, ip, _ in listening} == {"127.0.0.1"}, listening


def test_jupyterlab_fetches_no_news_and_checks_no_updates(running_hub: HubUnderTest) -> None:
    ada = learner(running_hub, "ada")
    news = ada.api("GET", "/user/ada/lab/api/news")
    assert news.status_code == 200 and news.json().get("news") == [], news.text[:200]
    update = ada.api("GET", "/user/ada/lab/api/update")
    assert update.status_code == 200 and update.json().get("notification") is None


def test_state_lives_in_one_private_folder(running_hub: HubUnderTest) -> None:
    state = running_hub.state_dir
    for name in ("hub.json", "jupyterhub.sqlite", "jupyterhub_cookie_secret", "learners.json"):
        assert (state / name).is_file(), name
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    # With an account per learner (root) they pass through to their homes; nobody lists it.
    assert stat.S_IMODE(state.stat().st_mode) == (0o711 if per_learner_accounts() else 0o700)
    text = (state / "learners.json").read_text() + (state / "hub.json").read_text()
    assert WORKSHOP_PASSWORD not in text and PASSWORDS["ada"] not in text
    for name in LEARNERS:
        home = state / "homes" / name
        assert stat.S_IMODE(home.stat().st_mode) == 0o700


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", f"safe.directory={repo}",
                    "-c", "user.name=organiser",
                    "-c", "user.email=organiser@example.invalid", *args],
                   check=True, capture_output=True)


def _pull(person: Learner, repo: Path, target: str) -> list[dict]:
    """nbgitpuller's own endpoint in the learner's server (what a git-pull link opens)."""
    if per_learner_accounts():
        # git refuses a repository another account owns ("dubious ownership"); an organiser
        # serves it over https or marks it safe system-wide (docs/workshop.md).
        import pwd

        owner = pwd.getpwnam(f"pvlab-{person.name}")
        for top, dirs, files in os.walk(repo):
            for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
                os.chown(name, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
    reply = person.api("GET", f"/user/{person.name}/git-pull/api",
                       params={"repo": f"file://{repo}", "branch": "main",
                               "targetpath": target}, stream=True)
    assert reply.status_code == 200, reply.text[:300]
    events = [json.loads(line[len("data: "):]) for line in reply.iter_lines(decode_unicode=True)
              if line and line.startswith("data: ")]
    assert events and events[-1].get("phase") == "finished", events[-3:]
    return events


def test_nbgitpuller_pulls_the_course_from_a_local_repository(
        running_hub: HubUnderTest) -> None:
    """A git-pull link's path with no network: the learner's server clones the course from a
    local repository, keeps the learner's edit when the organiser pushes a change to the same
    notebook, and brings new files."""
    if importlib.util.find_spec("nbgitpuller") is None:
        if os.environ.get("CI"):
            pytest.fail("nbgitpuller is not installed (pip install -e '.[hub]')")
        pytest.skip("nbgitpuller is not installed (pip install -e '.[hub]')")
    from pvlab.course import course_source

    repo = Path(tempfile.mkdtemp(prefix="pvlab-course-repo-"))
    try:
        repo.chmod(0o755)  # learners' own accounts read it (as root)
        source = course_source()
        for folder in ("notebooks", "exercises"):
            shutil.copytree(source / folder, repo / folder)
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "the course")
        ada = learner(running_hub, "ada")
        _pull(ada, repo, "course-git")
        path = "course-git/notebooks/06-scenario-lab.ipynb"
        assert ada.get_file(path).status_code == 200
        assert ada.get_file("course-git/solutions").status_code == 404
        notebook = copy.deepcopy(ada.get_file(path).json()["content"])
        notebook["cells"].append({"cell_type": "markdown", "metadata": {},
                                  "source": "ada's own note"})
        assert ada.put_notebook(path, notebook).status_code == 200
        # The organiser changes the same notebook and adds a file, then learners pull again.
        upstream = json.loads((repo / "notebooks/06-scenario-lab.ipynb").read_text())
        upstream["cells"].append({"cell_type": "markdown", "metadata": {},
                                  "source": "the organiser's fix"})
        (repo / "notebooks/06-scenario-lab.ipynb").write_text(json.dumps(upstream))
        (repo / "notebooks/NEW.md").write_text("# a new page\n")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "a fix and a new page")
        _pull(ada, repo, "course-git")
        assert _has_marker(ada, "ada's own note", path)
        assert ada.get_file("course-git/notebooks/NEW.md").status_code == 200
    finally:
        shutil.rmtree(repo, ignore_errors=True)


def _edited(person: Learner, marker: str) -> dict:
    notebook = person.get_file("notebooks/06-scenario-lab.ipynb").json()["content"]
    notebook = copy.deepcopy(notebook)
    notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": marker})
    return notebook


def _has_marker(person: Learner, marker: str,
                path: str = "notebooks/06-scenario-lab.ipynb") -> bool:
    reply = person.get_file(path)
    assert reply.status_code == 200, reply.text[:200]
    return marker in json.dumps(reply.json()["content"])


def test_edits_survive_a_server_restart_and_a_hub_restart(running_hub: HubUnderTest) -> None:
    markers = {name: f"edited by {name} before the restarts" for name in LEARNERS}
    for name in LEARNERS:
        person = learner(running_hub, name)
        assert person.put_notebook("notebooks/06-scenario-lab.ipynb",
                                   _edited(person, markers[name])).status_code == 200
    # A server restart (stop, start): the course copy must not overwrite the edit.
    cy = learner(running_hub, "cy")
    cy.stop_server()
    cy.start_server()
    assert _has_marker(cy, markers["cy"])
    # A hub restart, with `make hub`'s prepare step run again on the same folder.
    running_hub.restart()
    _signed_in.clear()
    started = time.monotonic()
    for name in LEARNERS:
        person = Learner(running_hub.url, name, PASSWORDS[name])
        person.login()  # existing accounts: no workshop password needed any more
        person.request_server()
        _signed_in[name] = person
    for name in LEARNERS:
        person = _signed_in[name]
        person.wait_ready(started)
        assert _has_marker(person, markers[name]), name
        assert not _has_marker(person, markers["dee" if name != "dee" else "ada"])
    # The lab still works after the restart (one learner is enough to show it).
    ada = _signed_in["ada"]
    ada.start_kernel()
    run_lab_actions(ada)


def test_homes_are_real_folders_of_the_state_dir(running_hub: HubUnderTest) -> None:
    for name in LEARNERS:
        saved = Path(running_hub.state_dir, "homes", name, "notebooks", "06-scenario-lab.ipynb")
        assert "before the restarts" in saved.read_text()
