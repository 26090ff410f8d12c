"""The dashboard's server: Streamlit running app.py, with the live view's feed beside it (ui.live_feed) and,
on a shared server, each browser's learner cookie and the teacher's link (ui.learners).

`make run` starts it (`streamlit run serve.py`); `streamlit run app.py` still serves the dashboard, but a
running run's view then stays at what the page drew until the page runs again, and on a shared server a
learner's runs are theirs for one browser session only.
"""

import contextlib
import socket

import streamlit as st
from starlette.middleware import Middleware
from streamlit import config

from ui import learners, live_feed

BASE = config.get_option("server.baseUrlPath") or ""


@contextlib.asynccontextmanager
async def _announce(_app):
    """On a shared server, the teacher's link, once, in the terminal: its secret is nowhere else."""
    if learners.shared():
        host = config.get_option("server.address") or ""
        if host in ("", "0.0.0.0", "::"):
            host = socket.gethostname()
        base = f"http://{host}:{config.get_option('server.port')}/{BASE.strip('/')}"
        link = learners.teacher_link(base)
        print(f"  Teacher's link (stop any run, order the queue; keep it to yourself): {link}", flush=True)
    yield


app = st.App(
    "app.py",
    routes=live_feed.routes(BASE),
    middleware=[Middleware(learners.LearnerCookies)],
    lifespan=_announce,
)
