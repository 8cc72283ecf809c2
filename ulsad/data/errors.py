"""The one exception of ``ulsad.data``: bad input that the user can fix."""


class DataError(ValueError):
    """A dataset file or folder is missing, unreadable or not in the expected layout.

    The message always names the file or folder and says what was expected, so
    that the command line can print it as is instead of a traceback.
    """
