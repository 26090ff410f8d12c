"""Run by test_read_only_store.py in a process that cannot write the run store (STUDIO_RUNS_DIR): opens
each page through app.py as a user does and prints, as JSON, what the pages and the store did."""

import json
import sys

from streamlit.testing.v1 import AppTest

from core import runs
from core.data.fashion import PROJECT_ROOT

PAGES = [None, "pages/Train.py", "pages/Optimization.py", "pages/Dataset_Explorer.py"]
STARTS = ("train_start", "race_start")


def _page(path: str | None) -> dict:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120).run()
    if path is not None:
        at = at.switch_page(path).run()
    at.run()  # a second rerun, as the sidebar's fragment gives every 5 s
    starts = {b.key: b.disabled for b in at.button if b.key in STARTS}
    return {
        "exceptions": [e.message for e in at.exception],
        "sidebar": [c.value for c in at.sidebar.caption],
        "starts": starts,
        "runs": [r.id for r in runs.list_runs()],
    }


def main() -> None:
    shown = {str(path): _page(path) for path in PAGES}
    print(json.dumps({"pages": shown, "spare": runs.prepare_worker(), "problem": runs.store_problem()}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
