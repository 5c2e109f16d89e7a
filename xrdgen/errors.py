"""One exception for everything a user can get wrong (bad file, bad config, bad argument).

The CLI prints its message as a single line and exits with status 2; no traceback. Messages name
the culprit first: "path/to/file.cif: no atoms in the structure".
"""


class UserError(Exception):
    """A problem with the user's input, reported as one line."""
