"""The one exception type users see: a single sentence that says what to do."""


class XstiltsError(Exception):
    """A user-facing failure (bad input, missing data or model); the CLI prints it and exits 2."""
