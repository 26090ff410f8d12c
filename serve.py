"""The dashboard's server: Streamlit running app.py, with the live view's feed beside it (ui.live_feed).

`make run` starts it (`streamlit run serve.py`); `streamlit run app.py` still serves the dashboard, but a
running run's view then stays at what the page drew until the page runs again.
"""

import streamlit as st
from streamlit import config

from ui import live_feed

app = st.App("app.py", routes=live_feed.routes(config.get_option("server.baseUrlPath") or ""))
