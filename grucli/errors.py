"""The one exception type the CLI turns into a clean one-line message (exit code 2)."""


class GrucliError(Exception):
    """A user-facing error: bad config, bad data, unknown name. The message is one line
    that names the problem and where it is (file, key path)."""


class ConfigError(GrucliError):
    """The experiment file or a --set override is malformed or invalid."""


class DataError(GrucliError):
    """A data file or bundled data set is missing, malformed or unusable. `key` is the task
    key that points at the problem (path, column, label, text) when the raiser knows it;
    the command adds the experiment file and the key path (execute.prepare)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key
