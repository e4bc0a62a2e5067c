"""Customer text is data, never a formula or a link.

A customer can type ``=HYPERLINK(...)`` or ``+86 138...`` into a complaint; Excel, a CSV
viewer or a COM write would run it. Writers store such text as plain strings, and CSV
output prefixes it with an apostrophe (OWASP "CSV injection").
"""

from __future__ import annotations

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def is_dangerous(text: object) -> bool:
    return isinstance(text, str) and text.startswith(DANGEROUS_PREFIXES)


def csv_safe(text: object) -> object:
    return "'" + text if isinstance(text, str) and is_dangerous(text) else text


def clean_control(text: str) -> str:
    """Drop control characters XML cannot hold (Excel files would not open), keep tab/newline."""
    return "".join(ch for ch in text if ch in "\t\n\r" or ord(ch) >= 32)
