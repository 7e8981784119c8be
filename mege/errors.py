"""One exception type for every user-facing error: a single line that names the fix."""


class MegeError(ValueError):
    """Bad input, config or file. The message is one line and says what to do instead."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`MegeError` with ``message`` when ``condition`` is false."""
    if not condition:
        raise MegeError(message)
