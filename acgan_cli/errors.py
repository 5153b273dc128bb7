"""The exceptions the CLI knows how to show: one line, exit code 1."""


class AcganError(Exception):
    """A problem the user can fix; its message says what and how."""


class DataError(AcganError):
    """The training or test data is missing, unreadable or malformed."""


class RunError(AcganError):
    """The run directory or a file in it is missing, foreign or damaged."""


class ConfigError(AcganError):
    """A setting is out of range or contradicts another."""


class TrainingError(AcganError):
    """Training cannot go on (non-finite losses, ...); completed epochs stay saved."""
