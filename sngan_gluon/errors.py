"""The one base of the errors a user can cause and fix.

Each part of the package raises its own kind at its boundary (a setting, a
dataset, a checkpoint, a run folder, a feature network's weights), and each
kind derives from :class:`UserError`. A command line catches ``UserError``
alone: it prints the message (one line) and exits with status 2. Any other
exception is a bug in the package and keeps its traceback.
"""

__all__ = ["UserError"]


class UserError(Exception):
    """Something the user can fix; the message says what is wrong and what to do, in one line."""
