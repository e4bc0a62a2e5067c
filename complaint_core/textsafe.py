"""Customer text is data, never a formula or a link.

A customer can type ``=HYPERLINK(...)`` or ``+86 138...`` into a complaint; Excel would run
it if it were written as a formula. The file writers store such text as plain strings; the
add-in's COM writes, which Excel parses like typing, prefix it with an apostrophe.
"""

from __future__ import annotations

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def is_dangerous(text: object) -> bool:
    return isinstance(text, str) and text.startswith(DANGEROUS_PREFIXES)


def clean_control(text: str) -> str:
    """Drop control characters XML cannot hold (Excel files would not open), keep tab/newline."""
    return "".join(ch for ch in text if ch in "\t\n\r" or ord(ch) >= 32)
