"""Runs that belong to whoever started them (core.runs.owners), the class's counts (core.runs.classroom),
and the server's cookies and teacher's link (ui.learners.LearnerCookies, driven as ASGI)."""

import asyncio
import threading
from http.cookies import SimpleCookie

import pytest

from core import runs
from core.base.errors import RunError
from core.runs import classroom, queue
from core.runs.locks import device_lock
from core.training.config import TrainConfig
from ui import learners

QUICK = TrainConfig(epochs=1, limit_batches=3, device="cpu")
ADA, BO = learners.owner_id("ada's secret"), learners.owner_id("bo's secret")


def test_only_the_owner_or_no_check_changes_a_run(runs_dir):
    with device_lock("cpu", runs_dir):  # the CPU busy: the runs wait, so nothing trains
        mine = queue.enqueue(QUICK, runs_dir, owner=ADA, owner_name="Ada").name
        for change in (
            lambda by: runs.stop(mine, runs_dir, by=by),
            lambda by: runs.set_label(mine, "x", "", runs_dir, by=by),
            lambda by: runs.cancel(mine, runs_dir, by=by),
        ):
            with pytest.raises(RunError, match=f"run {mine} is Ada's: only they, or the teacher"):
                change(BO)
        with pytest.raises(RunError, match="is Ada's"):
            runs.set_lr(mine, 0.01, runs_dir, by=BO)
        runs.set_label(mine, "mine", "", runs_dir, by=ADA)
        assert runs.get_run(mine, runs_dir).name == "mine"
        assert runs.get_run(mine, runs_dir).owner == ADA and runs.get_run(mine, runs_dir).owner_name == "Ada"
        runs.cancel(mine, runs_dir, by=ADA)
        nobodys = queue.enqueue(QUICK, runs_dir).name  # the command line's, or from before sharing
        with pytest.raises(RunError, match="is not yours"):
            runs.cancel(nobodys, runs_dir, by=BO)
        runs.cancel(nobodys, runs_dir)  # no check: the teacher, or the machine's own user


def test_an_owner_id_is_a_hash_of_the_secret_never_the_secret():
    assert len(ADA) == 32 and ADA != BO and "ada" not in ADA
    assert learners.owner_id("ada's secret") == ADA  # the same browser, the same owner, every time


def test_the_teacher_orders_and_clears_the_queue_and_sets_the_limit(runs_dir):
    with device_lock("cpu", runs_dir):
        first, second, third = (queue.enqueue(QUICK, runs_dir, owner=o).name for o in (ADA, BO, "cy"))
        queue.promote(third, runs_dir)
        assert [w.id for w in queue.fair_order(queue.waiting_runs(runs_dir), {})] == [third, first, second]
        assert queue.place_in_queue(third, runs_dir).position == 1
        queue.set_limit(1, runs_dir)
        with pytest.raises(RunError, match="1 of your runs are waiting already"):
            queue.enqueue(QUICK, runs_dir, owner=ADA)
        with pytest.raises(RunError, match="1 to 100"):
            queue.set_limit(0, runs_dir)
        assert queue.clear(runs_dir) == 3
        assert not queue.waiting_runs(runs_dir)


def test_the_class_counts_first_answers_only_and_names_nobody(runs_dir):
    classroom.record_answer("tensors-join", "What shape?", ADA, False, runs_dir)
    classroom.record_answer("tensors-join", "What shape?", ADA, True, runs_dir)  # a second try: not counted
    classroom.record_answer("tensors-join", "What shape?", BO, True, runs_dir)
    classroom.record_answer("autograd-twice", "w.grad?", BO, True, runs_dir)
    counts = classroom.answer_counts(runs_dir)
    assert counts == [
        {"moment": "tensors-join", "question": "What shape?", "answered": 2, "right": 1},  # most missed first
        {"moment": "autograd-twice", "question": "w.grad?", "answered": 1, "right": 1},
    ]
    assert classroom.set_name(ADA, "  Ada \n Lovelace ", runs_dir) == "Ada Lovelace"
    assert classroom.name_of(ADA, runs_dir) == "Ada Lovelace" and classroom.name_of(BO, runs_dir) == ""


# ---- the server's side: cookies and the teacher's link, as ASGI ---------------------------------------


def _call(path: str, query: str = "", cookie: str = "", accept: str = "text/html") -> tuple[dict, bool]:
    """One request through LearnerCookies: (the response's start message, whether the app was reached)."""
    reached, sent = [], []

    async def app(scope, receive, send):
        reached.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"page"})

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    headers = [(b"accept", accept.encode()), *([(b"cookie", cookie.encode())] if cookie else [])]
    scope = {
        "type": "http",
        "path": path,
        "query_string": query.encode(),
        "headers": headers,
        "root_path": "",
    }
    # In a thread of its own: after the browser tests, Playwright's loop is running in this one.
    worker = threading.Thread(target=asyncio.run, args=(learners.LearnerCookies(app)(scope, receive, send),))
    worker.start()
    worker.join(30)
    return sent[0], bool(reached)


def _cookies(start: dict) -> dict[str, str]:
    jar = SimpleCookie()
    for key, value in start["headers"]:
        if key == b"set-cookie":
            jar.load(value.decode())
            assert "HttpOnly" in value.decode() and "SameSite=Strict" in value.decode()
    return {name: morsel.value for name, morsel in jar.items()}


def test_a_browser_gets_its_learner_cookie_once_with_the_page():
    start, reached = _call("/Train")
    assert reached and len(_cookies(start)[learners.COOKIE]) >= 32  # 24 random bytes, base64
    assert not _cookies(_call("/Train", cookie=f"{learners.COOKIE}=kept")[0])  # already has one
    assert not _cookies(_call("/static/app.js", accept="*/*")[0])  # only pages set it


def test_the_teachers_link_becomes_a_cookie_and_leaves_the_address_bar():
    link = learners.teacher_link("http://class:8501")
    secret = link.split("teacher=")[1]
    start, reached = _call("/Train", query=f"teacher={secret}&run=abc", cookie=f"{learners.COOKIE}=k")
    assert not reached and start["status"] == 303
    assert dict(start["headers"])[b"location"] == b"/Train?run=abc"  # the secret is gone from the URL
    assert _cookies(start)[learners.TEACHER_COOKIE] == secret
    start, _ = _call("/", query="teacher=guessed", cookie=f"{learners.COOKIE}=k")
    assert start["status"] == 303 and learners.TEACHER_COOKIE not in _cookies(start)  # a wrong one: nothing
