"""Text that comes from files, folder names or users, shown as text: Streamlit renders Markdown."""

import re
import string

_MARKDOWN_SPECIAL = re.compile(f"([{re.escape(string.punctuation)}])")


# GitHub-flavoured Markdown also turns bare addresses into links ("http://x", "www.x", "a@b.c"), after
# escapes are read; a zero-width space inside each ("http:\u200b//") keeps the text as it reads.
_AUTOLINK = re.compile(r"(?i)(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)")
_ZERO_WIDTH_SPACE = "\u200b"


def escape_markdown(text: str) -> str:
    """`text` as Markdown that shows it literally wherever st.markdown, st.caption or st.error render it:
    every ASCII punctuation mark backslash-escaped (no link, emphasis or :color[...] directive) and bare
    addresses broken up, so nothing read from a file or a name becomes a link."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _AUTOLINK.sub(_ZERO_WIDTH_SPACE, text))
