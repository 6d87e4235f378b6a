"""The documents plugin's refusals: their messages are English msgids, fit to show once translated."""

from __future__ import annotations


class DocumentError(ValueError):
    """Refused; the message is fit to show (an English msgid, translated where shown)."""


class QuotaError(DocumentError):
    pass
