"""Layouts that hold up from a 1280 px window down to 800 px: rows that wrap instead of squeezing."""

import streamlit as st


def side_by_side(key: str, fixed_width: int, flexible_min: int = 420) -> tuple:
    """A fixed-width pane and a flexible one: side by side on a wide window, stacked on a narrow one.

    Columns would squeeze both panes at 800 px; this row wraps once the flexible pane would get
    narrower than `flexible_min` pixels. Returns the two containers, fixed first.
    """
    wrapper = f"[data-testid=stLayoutWrapper]:has(> .st-key-{key})"
    st.html(f"<style>{wrapper} {{ min-width: {flexible_min}px; }}</style>")
    row = st.container(horizontal=True, gap="large")
    return row.container(width=fixed_width), row.container(width="stretch", key=key)


def cells(count: int, width: int) -> list:
    """`count` fixed-width cells in a row that wraps, e.g. for images with captions."""
    row = st.container(horizontal=True, gap="small")
    return [row.container(width=width) for _ in range(count)]
