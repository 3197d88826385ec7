"""The one exception type for problems the user can fix.

A bad data file, a checkpoint that does not fit, a flag out of range, a broken
placeholder in a chapter: each raises UserError with a message that names the
file (or flag) and says what to do. build.py prints it as ``error: ...`` and
exits 2. Bugs are not UserErrors; they keep their traceback.
"""


class UserError(Exception):
    """A problem with the user's input, explained in the message."""
