"""One error family. Each is also a built-in exception so callers can catch either."""


class LipdubError(Exception):
    """Base of every error lipdub raises on purpose. ``str(err)`` is one line for the user."""

    exit_code = 1


class InputError(LipdubError, ValueError):
    """A user-supplied file, option or value is unusable (names the file and the problem)."""

    exit_code = 2


class StillImageError(InputError):
    """A still photo where a video was expected (``lipdub run`` takes one as its input)."""


class NoFaceError(LipdubError, ValueError):
    """No usable face was found where one is required."""

    exit_code = 3


class MediaError(LipdubError, RuntimeError):
    """ffmpeg/ffprobe failed; carries the tail of its stderr."""

    exit_code = 4

    def __init__(self, message: str, stderr: str = ""):
        tail = " | ".join(line.strip() for line in stderr.strip().splitlines()[-3:] if line.strip())
        super().__init__(f"{message}: {tail}" if tail else message)
        self.stderr = stderr


class DiskFullError(LipdubError, OSError):
    """The disk (or quota) of an output folder is full; names that folder."""

    exit_code = 1

    def __init__(self, folder):
        super().__init__(f"{folder}: no space left on device (the disk is full)")
        self.folder = str(folder)


class BusyError(InputError):
    """Another lipdub run is writing the same output right now."""


class WeightsNotFoundError(LipdubError, FileNotFoundError):
    """Model weights are missing; the message names every path searched and how to make them."""

    exit_code = 5

    def __init__(self, what: str, searched: list, hint: str = ""):
        paths = ", ".join(str(p) for p in searched)
        msg = f"{what} weights not found (searched: {paths})"
        super().__init__(msg + (f"; {hint}" if hint else ""))
        self.searched = list(searched)
