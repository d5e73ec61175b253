"""One error tree. Every error a user can act on is a `PunktraitsError` whose message says, in one
line, what was wrong with which input and what to do; the CLI prints it and exits 2 (1 for a file
of a batch), the web app answers JSON with `status`."""

from __future__ import annotations


class PunktraitsError(Exception):
    """An error a user can act on; its message says what was wrong and what to do, in one line."""

    status = 400  # the HTTP status the web app answers with


class DataError(PunktraitsError):
    """A problem with the data folder."""


class RunError(PunktraitsError):
    """A run folder is missing, incomplete, damaged or was changed."""


class ImageError(PunktraitsError, ValueError):
    """An image that cannot be read as a punk; the message names the file and the reason.

    `status` sorts the reasons as HTTP does (the web app answers with it): 413 too large (bytes
    or pixels), 415 not an image or an unsupported format, 422 unreadable or not a punk."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status
