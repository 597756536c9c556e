"""User-facing errors.

A :class:`UserError` is a mistake the user can fix (bad path, wrong checkpoint, bad option). The CLI
prints its message as one line and exits with code 2; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input: one line saying what file/argument, what is wrong, what to do."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
