"""Errors a user can cause. The CLI prints them as one sentence and exits with status 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: a suite, dataset name, store file or flag the user can fix.

    The message is a sentence that says what was wrong and how to fix it, naming the file and
    the field where there is one (``suites/x.yaml: targets[2]: unknown dataset 'mnsit' ...``).
    """

    exit_status = 2

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file = file
        self.field = field
        prefix = ""
        if file:
            prefix += f"{file}: "
        if field:
            prefix += f"{field}: "
        super().__init__(prefix + message)


class DatasetUnavailable(UserError):
    """A dataset that exists but cannot be prepared here (not downloaded, package missing)."""
