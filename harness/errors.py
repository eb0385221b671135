"""The one error type users see: where (file:line) and what, on one line."""

from __future__ import annotations

import traceback


class CaseTimeout(BaseException):
    """Raised by the alarm inside a case that ran past its time limit (not an Exception, so no
    handler inside the case swallows it)."""


class HarnessError(Exception):
    """A problem with user input. `str()` is the one-line message, `file:line: what`."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def at(self, file: str, line: int | None) -> HarnessError:
        """The same error, placed in a file (keeps a more precise line if one is known)."""
        return HarnessError(self.message, file=file, line=self.line if self.line else line)

    def __str__(self) -> str:
        message = clip(self.message)
        if self.file is None:
            return message
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {message}"


MAX_MESSAGE = 1_000  # characters of one error's reason: it is quoted in every report


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """A reason cut to `limit` characters (a quoted 300-digit number, a long name), saying so."""
    return text if len(text) <= limit else f"{text[:limit - 40]}... ({len(text)} characters in all)"


def unexpected(exc: BaseException) -> str:
    """An exception that is not a HarnessError (a bug, or torch or SymPy failing), on one line:
    its type, its first line and where it was raised."""
    if isinstance(exc, MemoryError):
        return "error: out of memory (the case reached its memory limit)"
    try:  # an exception from user code may have a __str__ that raises, or a huge one
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})" if where else ""
        text = str(exc).strip()
        first = text.splitlines()[0][:500] if text else ""
    except Exception:
        at, first = "", "(its message cannot be printed)"
    return f"{type(exc).__name__}: {first}{at}"
