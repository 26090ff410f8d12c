"""Text that comes from files, folder names or users, shown as text: Streamlit renders Markdown."""

import re
import string

_MARKDOWN_SPECIAL = re.compile(f"([{re.escape(string.punctuation)}])")


def escape_markdown(text: str) -> str:
    """Backslash-escape every ASCII punctuation mark, so Markdown shows `text` literally (no link, no
    emphasis, no :color[...] directive) wherever st.markdown, st.caption or st.error render it."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
