"""Layouts that hold up from a 1280 px window down to a 412 px phone: rows that wrap instead of squeezing."""

import streamlit as st

# Rules for every page (app.py applies them once per run, before the page):
# a picture shown at a fixed width (st.image(width=N), e.g. a batch's mosaic) shrinks to fit a narrower
# screen, keeping its proportions, rather than making the whole page scroll sideways.
# (Streamlit already caps the <img> at 100% of its box; the box itself is sized by the img's width.)
_FIT_TO_SCREEN = (
    "[data-testid=stImageContainer] { max-width: 100%; } [data-testid=stImage] img { height: auto; }"
)


def fit_to_screen() -> None:
    """Keep every page within the window's width, down to a 412 px phone (see _FIT_TO_SCREEN)."""
    st.html(f"<style>{_FIT_TO_SCREEN}</style>")


def side_by_side(key: str, fixed_width: int, flexible_min: int = 420) -> tuple:
    """A fixed-width pane and a flexible one: side by side on a wide window, stacked on a narrow one.

    Columns would squeeze both panes at 800 px; this row wraps once the flexible pane would get
    narrower than `flexible_min` pixels, and on a screen narrower than that (a phone) the pane takes
    the whole width rather than widening the page. Returns the two containers, fixed first.
    """
    wrapper = f"[data-testid=stLayoutWrapper]:has(> .st-key-{key})"
    st.html(f"<style>{wrapper} {{ min-width: min({flexible_min}px, 100%); }}</style>")
    row = st.container(horizontal=True, gap="large")
    return row.container(width=fixed_width), row.container(width="stretch", key=key)


def cells(count: int, width: int) -> list:
    """`count` fixed-width cells in a row that wraps, e.g. for images with captions."""
    row = st.container(horizontal=True, gap="small")
    return [row.container(width=width) for _ in range(count)]


def tiles(key: str, count: int, min_width: int) -> list:
    """`count` bordered tiles in rows that wrap, each at least `min_width` px and stretched to share its
    row (four across a wide window, two on a phone); a link's label inside wraps rather than being cut."""
    tile = f"[class*=st-key-{key}_]"  # the tiles' keys: f"{key}_{i}"
    st.html(
        f"<style>[data-testid=stLayoutWrapper]:has(> {tile}) {{ flex: 1 1 {min_width}px; }}"
        f"{tile} [data-testid=stPageLink] * {{ white-space: normal; line-height: 1.4; }}</style>"
    )
    row = st.container(horizontal=True, key=key)
    return [row.container(border=True, height="stretch", key=f"{key}_{i}") for i in range(count)]
