"""A page's view state in its URL: typed query parameters, checked before they set a widget.

A page lists its `Param`s (URL name, session-state key, how to read and write the value), calls
`adopt` before drawing its widgets and `keep` after. `adopt` fills a widget's key from the link the
first time the page draws it in a visit (a bad value is dropped with a notice saying why, and the
widget keeps its default); otherwise from what the page showed last in this session, so switching
pages and coming back keeps the view. `keep` writes the values back into the URL and offers the
link to copy. Nothing read from a link is ever executed: each value is parsed against a fixed type,
range or list of choices.
"""

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

import streamlit as st

MEMORY_KEY = "_link_memory"  # {session-state key: URL value}: the view last kept, per key
MAX_TEXT = 200  # no URL value longer than this is read at all, whatever its type
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-z]{4}")  # core.runs.new_run_id: YYYYMMDD-HHMMSS-xxxx

Value = str | list[str]  # one query value, or a repeated one (?c=1&c=2)


class BadLink(ValueError):
    """A value in a link that cannot be used; the message says why, in a sentence."""


@dataclass(frozen=True)
class Param:
    """One piece of a page's view state: `?name=` in the URL, `st.session_state[key]` in the page."""

    name: str
    key: str
    read: Callable[[Value], object]  # the URL's text -> the widget's value; raises BadLink
    write: Callable[[object], Value] = str  # the widget's value -> the URL's text
    repeated: bool = False  # a list, as ?name=a&name=b
    fallback: str = "the default"  # what the page shows instead of a bad value


def _short(value: Value) -> str:
    text = ",".join(value) if isinstance(value, list) else value
    return repr(text if len(text) <= 24 else text[:24] + "…")


def _single(value: Value) -> str:
    text = value[-1] if isinstance(value, list) else value
    if len(text) > MAX_TEXT:
        raise BadLink(f"a value of {len(text):,} characters is too long.")
    return text


# ---- parameter types ----------------------------------------------------------------------------------


def whole(name: str, key: str, low: int, high: int, **kw) -> Param:
    """A whole number from `low` to `high`."""

    def read(value: Value) -> int:
        text = _single(value)
        if not re.fullmatch(r"-?\d{1,12}", text):
            raise BadLink(f"{name} {_short(text)} is not a whole number.")
        if not low <= int(text) <= high:
            raise BadLink(f"{name} {int(text):,} is out of range ({low:,} to {high:,}).")
        return int(text)

    return Param(name, key, read, **kw)


def number(name: str, key: str, low: float, high: float, **kw) -> Param:
    """A finite float from `low` to `high`."""

    def read(value: Value) -> float:
        text = _single(value)
        try:
            result = float(text)
        except ValueError:
            raise BadLink(f"{name} {_short(text)} is not a number.") from None
        if not math.isfinite(result) or not low <= result <= high:
            raise BadLink(f"{name} {_short(text)} is out of range ({low:g} to {high:g}).")
        return result

    return Param(name, key, read, write=lambda v: f"{v:g}", **kw)


def choice(name: str, key: str, choices: Mapping[str, object] | Sequence[str], **kw) -> Param:
    """One of `choices`: URL text -> value (a sequence maps each text to itself)."""
    table = dict(choices) if isinstance(choices, Mapping) else {c: c for c in choices}
    back = {v: k for k, v in table.items()}

    def read(value: Value) -> object:
        text = _single(value)
        if text not in table:
            raise BadLink(f"{name} {_short(text)} is not one of {_list(table)}.")
        return table[text]

    return Param(name, key, read, write=lambda v: back[v], **kw)


def choices(name: str, key: str, options: Mapping[str, object] | Sequence[str], most: int, **kw) -> Param:
    """Up to `most` of `options`, each at most once, as a repeated parameter (?c=a&c=b)."""
    one = choice(name, key, options)

    def read(value: Value) -> list:
        texts = value if isinstance(value, list) else [value]
        if len(texts) > most:
            raise BadLink(f"{name} has {len(texts):,} values; at most {most} are allowed.")
        if len(set(texts)) < len(texts):
            raise BadLink(f"{name} names a value twice.")
        return [one.read(text) for text in texts if text != ""]  # ?c= alone: none chosen

    def write(value: object) -> list[str]:
        return [one.write(v) for v in value] or [""]  # ?c= : none chosen, which is not the default

    return Param(name, key, read, write=write, repeated=True, **kw)


def run_id(name: str, key: str, **kw) -> Param:
    """A run's id as core.runs makes them: never a path (no `/`, no `..`)."""

    def read(value: Value) -> str:
        text = _single(value)
        if not RUN_ID.fullmatch(text):
            raise BadLink(f"{name} {_short(text)} is not a run id (YYYYMMDD-HHMMSS-xxxx).")
        return text

    return Param(name, key, read, **kw)


def text(name: str, key: str, most: int, **kw) -> Param:
    """A short string of printable characters, at most `most` long."""

    def read(value: Value) -> str:
        result = _single(value)
        if len(result) > most:
            raise BadLink(f"{name} is {len(result):,} characters long; at most {most} are allowed.")
        if not result.isprintable():
            raise BadLink(f"{name} holds characters that cannot be shown.")
        return result

    return Param(name, key, read, **kw)


def _list(table: Iterable[str]) -> str:
    names = list(table)
    shown = ", ".join(names[:8])
    return shown + (f" (and {len(names) - 8} more)" if len(names) > 8 else "")


# ---- reading and writing the URL ----------------------------------------------------------------------


def _from_url(param: Param) -> Value | None:
    if param.name not in st.query_params:
        return None
    return st.query_params.get_all(param.name) if param.repeated else st.query_params[param.name]


def adopt(params: Iterable[Param]) -> list[str]:
    """Give each param's widget its value from the link, or from this session's last view of the page.

    Only keys with no value yet are set (a widget the user already changed keeps its value). Returns one
    notice per link value that was refused; the widget then shows its default (show them with `notify`).
    """
    notices = []
    memory = st.session_state.setdefault(MEMORY_KEY, {})
    for param in params:
        if param.key in st.session_state:
            continue
        from_url = _from_url(param)
        raw = from_url if from_url is not None else memory.get(param.key)
        if raw is None:
            continue
        try:
            st.session_state[param.key] = param.read(raw)
        except BadLink as exc:
            if from_url is not None:  # a remembered value gone stale (e.g. a deleted run) goes quietly
                notices.append(f"From the link: {exc} Showing {param.fallback} instead.")
            memory.pop(param.key, None)
    return notices


def notify(notices: Iterable[str]) -> None:
    """The link's refused values, small: the page still works, with its defaults."""
    for notice in notices:
        st.caption(f":orange[:material/link_off:] {notice}")


def keep(params: Iterable[Param], values: Mapping[str, object] | None = None, where=None) -> None:
    """Write the view into the URL (and remember it for this session); offer the link in `where`.

    `values` maps a param's key to what the page shows, where that differs from st.session_state
    (a fallback the page chose); by default each key's session-state value is written.
    """
    memory = st.session_state.setdefault(MEMORY_KEY, {})
    shown = {}
    for param in params:
        value = (values or {}).get(param.key, st.session_state.get(param.key))
        if value is None:
            st.query_params.pop(param.name, None)
            memory.pop(param.key, None)
            continue
        shown[param.name] = memory[param.key] = param.write(value)
    st.query_params.update(shown)
    if where is not None:
        copy_link(where)


def current_url() -> str:
    """The page's address with its query, as a user would paste it (relative where the host is unknown)."""
    query = urlencode({name: st.query_params.get_all(name) for name in st.query_params}, doseq=True)
    base = st.context.url or ""
    return f"{base}?{query}" if query else base


def copy_link(where) -> None:
    """A "Copy link" popover in `where`: the address in a code box, whose icon copies it."""
    with where.popover("Copy link", icon=":material/link:", help="A link that opens this page as it is now"):
        st.code(current_url(), language=None, wrap_lines=True)
        st.caption("Copy it with the icon at the box's right; whoever opens it sees this view.")
