"""Exceptions meant for people: each message says what went wrong and what to do."""


class StudioError(Exception):
    """Base class for errors whose message is shown to the user as is."""


class DatasetNotFound(StudioError):
    """FashionMNIST could not be found or fetched."""


class DatasetCorrupt(StudioError):
    """A dataset file exists but is truncated or malformed."""


class BadCheckpoint(StudioError):
    """A checkpoint file cannot be loaded safely."""


class BadImage(StudioError):
    """An uploaded image cannot be used for prediction."""


class BadConfig(StudioError):
    """A training configuration is invalid."""


class RunError(StudioError):
    """A run cannot be started, stopped or found."""
