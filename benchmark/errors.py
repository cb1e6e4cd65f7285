"""Errors a user can cause. The CLI prints them as one sentence and exits with status 2."""

from __future__ import annotations

import difflib
from collections.abc import Sequence


class UserError(Exception):
    """Bad input: a suite, dataset name, store file or flag the user can fix.

    The message is a sentence that says what was wrong and how to fix it, naming the file and
    the field where there is one (``suites/x.yaml: targets[2]: unknown dataset 'mnsit' ...``).
    """

    exit_status = 2

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file = file
        self.field = field
        self.message = message
        prefix = ""
        if file:
            prefix += f"{file}: "
        if field:
            prefix += f"{field}: "
        super().__init__(prefix + message)


class DatasetUnavailable(UserError):
    """A dataset that exists but cannot be prepared here (not downloaded, package missing)."""


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choices, or a list of the valid ones."""
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    if close:
        return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
    shown = ", ".join(sorted(choices)[:12])
    return f" (known: {shown}{', ...' if len(choices) > 12 else ''})"
