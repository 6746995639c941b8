"""The one exception type the CLI turns into a clean one-line message (exit code 2)."""


class GrucliError(Exception):
    """A user-facing error: bad config, bad data, unknown name. The message is one line
    that names the problem and where it is (file, key path)."""


class ConfigError(GrucliError):
    """The experiment file or a --set override is malformed or invalid."""


class DataError(GrucliError):
    """A data file or bundled data set is missing, malformed or unusable."""
