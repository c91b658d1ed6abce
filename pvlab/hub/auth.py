# SPDX-License-Identifier: MIT
"""`WorkshopAuthenticator`: the organiser's workshop password claims a name, once.

JupyterHub's own `SharedPasswordAuthenticator` lets anyone with the shared password log in
as *any* learner, which would make every isolation test moot. This one is as simple for the
room but keeps learners apart:

- first sign-in with a new name: the workshop password goes in the third field ("Workshop
  password"), and the password typed in the usual field becomes that learner's own (at least
  8 characters); its scrypt hash is stored in `learners.json` in the state folder;
- later sign-ins: the learner's own password only; the workshop password does not open an
  existing account;
- admin names (`--admin`) can only be claimed with the admin password, never the workshop one.

The same form fields work through the REST API (`POST /hub/api/users/NAME/tokens` with
`{"auth": {"username", "password", "otp"}}`): that is how the load test logs learners in.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import threading
from hmac import compare_digest
from pathlib import Path
from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Bool, Unicode

from pvlab.hub.settings import MIN_PASSWORD

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_LOCK = threading.Lock()


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    salt = base64.b64decode(salt_b64)
    return compare_digest(hash_password(password, salt), stored)


class LearnerBook:
    """learners.json: name -> password hash, written atomically, readable by the hub only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, str]:
        if not self.path.is_file():
            return {}
        data = json.loads(self.path.read_text())
        return {str(k): str(v) for k, v in data.items()}

    def claim(self, name: str, password_hash: str) -> bool:
        """Record `name`; False if someone claimed it first."""
        with _LOCK:
            book = self.load()
            if name in book:
                return False
            book[name] = password_hash
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(book, out, indent=1)
            tmp.replace(self.path)
            return True


class WorkshopAuthenticator(Authenticator):
    """Workshop password to claim a name (first sign-in), then the learner's own password."""

    workshop_password = Unicode("", config=True, help="Password that claims a new name.")
    admin_password = Unicode("", config=True, help="Password that claims an admin name.")
    learners_file = Unicode("learners.json", config=True, help="Where password hashes live.")
    request_otp = Bool(True, config=True)
    otp_prompt = Unicode("Workshop password (first sign-in only):", config=True)

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        name = self.normalize_username(data.get("username", ""))
        password = data.get("password", "")
        code = data.get("otp", "")
        if not name or not password or not self.validate_username(name):
            return None
        book = LearnerBook(Path(self.learners_file))
        stored = book.load().get(name)
        admin = name in self.admin_users
        if stored is not None:
            ok = await asyncio.to_thread(verify_password, password, stored)
            return {"name": name, "admin": admin} if ok else None
        secret = self.admin_password if admin else self.workshop_password
        if not secret or not compare_digest(code.encode(), secret.encode()):
            self.log.warning("refused first sign-in for %s: wrong workshop password", name)
            return None
        if len(password) < MIN_PASSWORD or compare_digest(password.encode(), secret.encode()):
            self.log.warning("refused first sign-in for %s: personal password too short or "
                             "equal to the workshop password", name)
            return None
        hashed = await asyncio.to_thread(hash_password, password)
        if not book.claim(name, hashed):
            return None
        self.log.info("learner %s claimed their name", name)
        return {"name": name, "admin": admin}
