"""Who uses a shared dashboard: each browser is a learner, known by a random secret it keeps in a cookie;
runs record the secret's hash as their owner, so only that browser (or the teacher) can change them.

Shared means the server listens beyond this machine (`HOST=0.0.0.0 make run`) or STUDIO_SHARED=1; on
loopback the single user owns everything, as before. The secret (192 random bits) is set by the server
as an HttpOnly cookie on the first page a browser opens (LearnerCookies, mounted by serve.py), so page
scripts never see it and a copied link never carries it. Only its SHA-256 is stored. The teacher's link,
printed once when a shared server starts (as Jupyter prints its token link), trades its secret for a
teacher cookie and sends the browser on without it, so it stays out of the address bar and of links.
"""

import hashlib
import hmac
import os
import secrets
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode

import streamlit as st

from core import runs
from core.runs import classroom

COOKIE = "studio_learner"
TEACHER_COOKIE = "studio_teacher"
TEACHER_PARAM = "teacher"
SECRET_BYTES = 24  # 192 bits
COOKIE_AGE_S = 365 * 24 * 3600
LOOPBACK = ("127.0.0.1", "localhost", "::1", "")
_SESSION_SECRET = "learner_secret"  # session_state: a browser without the cookie (no serve.py) is one session
_teacher = {"hash": None}  # the teacher link's secret, hashed; set once by serve.py at start


def shared() -> bool:
    """Whether several people may use this server: it listens beyond loopback, or STUDIO_SHARED=1."""
    if os.environ.get("STUDIO_SHARED", "").strip() == "1":
        return True
    address = str(st.get_option("server.address") or "")
    return address not in LOOPBACK and not address.startswith("127.")


def owner_id(secret: str) -> str:
    """What a run records of its owner: the secret's SHA-256, 128 bits of it as hex."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def me() -> str:
    """This browser's owner id: from its cookie, else (a server without serve.py) this session's own."""
    secret = st.context.cookies.get(COOKIE)
    if not isinstance(secret, str) or not secret:  # (AppTest's context holds no real cookies)
        secret = st.session_state.setdefault(_SESSION_SECRET, secrets.token_urlsafe(SECRET_BYTES))
    return owner_id(secret)


def is_teacher() -> bool:
    secret = st.context.cookies.get(TEACHER_COOKIE)
    if not isinstance(secret, str) or not secret or not _teacher["hash"]:
        return False
    return hmac.compare_digest(owner_id(secret), _teacher["hash"])


def actor() -> str | None:
    """Who asks, for core's ownership checks (runs.check_owner): None, no check, on a server of one user
    and for the teacher; else this browser's owner id."""
    return None if not shared() or is_teacher() else me()


def may_change(run: runs.RunInfo) -> bool:
    """Whether this browser may stop, steer, rename or cancel `run`."""
    who = actor()
    return who is None or run.owner == who


def owner_name(run: runs.RunInfo) -> str:
    return run.owner_name


# ---- display names -----------------------------------------------------------------------------------------


def name() -> str:
    """The display name this browser gave (kept in the store by its owner id), "" while it gave none."""
    return classroom.name_of(me())


def set_name(text: str) -> str:
    return classroom.set_name(me(), text)


def start_fields() -> dict:
    """What runs.start records of who started a run: nothing on a server of one user."""
    if not shared():
        return {}
    owner = me()
    return {"owner": owner, "owner_name": classroom.name_of(owner) or f"learner {owner[:4]}"}


def record_answer(moment: str, question: str, right: bool) -> None:
    """A prediction's first verdict, counted for the teacher's view on a shared server (no names)."""
    if shared():
        classroom.record_answer(moment, question, me(), right)


# ---- the cookies and the teacher's link, in the server (serve.py) ----------------------------------------


def teacher_link(base: str) -> str:
    """A new teacher secret, kept hashed; the link that carries it (printed once, in the terminal)."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    _teacher["hash"] = owner_id(secret)
    return f"{base.rstrip('/')}/?{urlencode({TEACHER_PARAM: secret})}"


def _set_cookie(name: str, value: str) -> tuple[bytes, bytes]:
    return (
        b"set-cookie",
        f"{name}={value}; Path=/; Max-Age={COOKIE_AGE_S}; HttpOnly; SameSite=Strict".encode(),
    )


class LearnerCookies:
    """ASGI middleware: gives a browser opening a page its learner cookie, and turns the teacher's link
    into a teacher cookie (then sends the browser to the same page without the secret)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        jar = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except CookieError:  # a cookie header we cannot read: as if there were none
            jar = SimpleCookie()
        extra = []
        if COOKIE not in jar and "text/html" in headers.get("accept", ""):
            extra.append(_set_cookie(COOKIE, secrets.token_urlsafe(SECRET_BYTES)))
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if any(key == TEACHER_PARAM for key, _ in query):
            return await self._teacher(scope, send, query, extra)
        if not extra:
            return await self.app(scope, receive, send)

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return await self.app(scope, receive, send_with_cookie)

    async def _teacher(self, scope, send, query, extra) -> None:
        secret = next(value for key, value in query if key == TEACHER_PARAM)
        if _teacher["hash"] and hmac.compare_digest(owner_id(secret), _teacher["hash"]):
            extra.append(_set_cookie(TEACHER_COOKIE, secret))
        rest = urlencode([(key, value) for key, value in query if key != TEACHER_PARAM])
        location = scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else "")
        headers = [(b"location", location.encode()), (b"cache-control", b"no-store"), *extra]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


MINE, EVERYONE = "Mine", "Everyone"
MINE_KEY = "train_runs_whose"


def listed(all_runs: list[runs.RunInfo]) -> list[runs.RunInfo]:
    """The runs the table lists: on a shared server, this browser's alone when "Mine" is chosen."""
    if not shared() or st.session_state.get(MINE_KEY, EVERYONE) != MINE:
        return all_runs
    owner = me()
    return [run for run in all_runs if run.owner == owner]


def whose_control() -> None:
    """ "Mine / Everyone" above the runs table, on a shared server."""
    if shared():
        st.segmented_control(
            "Runs", [MINE, EVERYONE], default=EVERYONE, key=MINE_KEY, label_visibility="collapsed"
        )
