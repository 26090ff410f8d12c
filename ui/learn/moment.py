"""Predict, then see: a Learn page's question, asked before the page shows its answer.

The learner types a shape or a number, or picks an option, and commits; only then does the page show the
live result, beside their guess, with one sentence on why. "Just show me" reveals without a guess. The
answer comes from PyTorch, computed from the page's controls (core.learn.moments), so a control changed
makes a new question of the same moment. What was answered lives in this browser session's state only:
the score in the sidebar counts each moment's first committed guess, and no link carries it.
"""

import streamlit as st

from core.learn import moments
from core.learn.moments import Moment
from ui import learners
from ui.text import escape_markdown

ON = "moments_on"  # session_state, the sidebar's toggle: False shows every answer at once, asking nothing
ANSWERS = "moments_answers"  # session_state: {moment id: {"right": bool, "page": PAGES key, "question"}}
_REVEALED = "moments_revealed"  # session_state: {(moment id, the controls' signature): guess or None}


def ask(moment: Moment, answer, *, page: str, signature: str = "") -> bool:
    """The moment's question, and its verdict once answered. True once the answer may be shown (after a
    commit or "Just show me"): the caller then draws what it hides until then.

    `signature` names the controls the answer was computed from: another signature is another question.
    With predictions turned off in the sidebar, nothing is asked and the answer is shown."""
    if not st.session_state.get(ON, True):
        return True
    revealed = st.session_state.setdefault(_REVEALED, {})
    key = f"moment_{moment.id}"
    state = (moment.id, signature)
    with st.container(border=True, key=f"{key}_box"):
        st.markdown(f":material/psychology_alt: **Predict first.** {moment.question}")
        if state not in revealed:
            _question(moment, answer, page, key, state)
        if state in revealed:
            _verdict(moment, answer, revealed[state])
            return True
    return False


def _question(moment: Moment, answer, page: str, key: str, state: tuple) -> None:
    if moment.kind == "choice":
        st.radio("Your prediction", moment.options, index=None, key=f"{key}_guess")
    else:
        example = "e.g. 4, 3" if moment.kind == "shape" else "a number"
        st.text_input("Your prediction", key=f"{key}_guess", placeholder=example, max_chars=60)
    row = st.container(horizontal=True)
    # Callbacks, which run before the page does: a page may run twice for one click (ui.nav.title).
    args = (moment, answer, page, key, state)
    row.button("Commit", type="primary", key=f"{key}_commit", on_click=_commit, args=args)
    row.button("Just show me", type="tertiary", key=f"{key}_show", on_click=_show, args=(state,))
    said = st.session_state.pop(f"{key}_said", None)
    if said:
        st.warning(said)


def _show(state: tuple) -> None:
    st.session_state.setdefault(_REVEALED, {})[state] = None


def _commit(moment: Moment, answer, page: str, key: str, state: tuple) -> None:
    guess = st.session_state.get(f"{key}_guess")
    if guess is None or not str(guess).strip():
        st.session_state[f"{key}_said"] = "Type or pick a prediction first, or press Just show me."
        return
    try:
        right = moments.is_right(moment, str(guess), answer)
    except moments.BadGuess as exc:
        st.session_state[f"{key}_said"] = f"{exc}: nothing was counted, try again."
        return
    st.session_state.setdefault(_REVEALED, {})[state] = str(guess)
    answers = st.session_state.setdefault(ANSWERS, {})
    if moment.id not in answers:  # the first committed guess is the one that counts
        answers[moment.id] = {"right": right, "page": page, "question": moment.question}
        learners.record_answer(moment.id, moment.question, right)  # a shared server counts it for the teacher


def _verdict(moment: Moment, answer, guess: str | None) -> None:
    said = moments.shown(moment, answer)
    if guess is not None:
        right, guess = moments.is_right(moment, guess, answer), escape_markdown(guess)  # typed: text only
    if guess is None:
        st.info(f"The answer: **{said}**. {moment.why}")
    elif right:
        st.success(f"Right: you said {guess!s}, and PyTorch gives **{said}**. {moment.why}")
    else:
        st.error(f"Not quite: you said {guess!s}, PyTorch gives **{said}**. {moment.why}")


def score() -> tuple[int, int, list[dict]]:
    """(right, answered, the missed ones) in this browser session."""
    answers = st.session_state.get(ANSWERS, {})
    missed = [a for a in answers.values() if not a["right"]]
    return len(answers) - len(missed), len(answers), missed


def toggle() -> None:
    """The sidebar's switch for readers who do not want the game: off, every answer shows at once."""
    st.session_state.setdefault(ON, True)
    st.toggle(
        "Predict before each answer",
        key=ON,
        help="On the Learn pages, commit a guess before PyTorch gives the answer. Off: every answer at once.",
    )
