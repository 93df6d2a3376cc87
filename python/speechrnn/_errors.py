"""The exceptions raised by speechrnn. Each derives from FeatureError and from Python's own
ValueError or OSError, so either can be caught."""


class FeatureError(Exception):
    """Base class of every error speechrnn raises."""


class OptionsError(FeatureError, ValueError):
    """Options that are unknown, out of range or contradict each other."""


class AudioError(FeatureError, ValueError):
    """Samples that cannot be used: not finite, shorter than one frame, the wrong shape or type."""


class AudioFileError(FeatureError, OSError):
    """A file that cannot be opened, read or decoded as WAV."""


class RunError(FeatureError, OSError):
    """A run folder that cannot be loaded, or that cannot do what was asked of it."""
