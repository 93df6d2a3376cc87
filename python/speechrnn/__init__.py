"""MFCC and log-mel features equal to Kaldi, librosa and python_speech_features, and trained
recurrent recognisers, computed in Rust.

    >>> import numpy as np, speechrnn
    >>> y = np.sin(np.arange(16000, dtype=np.float32) * 0.1) * 0.1
    >>> speechrnn.mfcc(y, 16000).shape          # Kaldi's compute-mfcc-feats
    (98, 13)
    >>> speechrnn.log_mel(y, 16000, preset="librosa", n_fft=512, hop_length=160).shape
    (101, 128)

Arrays are [frames, coefficients], float32. Presets: "kaldi", "librosa", "htk"
(python_speech_features); keyword overrides use librosa's names (see OVERRIDES).
"""

from ._errors import AudioError, AudioFileError, FeatureError, OptionsError, RunError
from ._speechrnn import (
    OVERRIDES,
    FeatureStream,
    Recogniser,
    Stream,
    load,
    log_mel,
    mfcc,
    mfcc_files,
)

__all__ = [
    "AudioError",
    "AudioFileError",
    "FeatureError",
    "FeatureStream",
    "OVERRIDES",
    "OptionsError",
    "Recogniser",
    "RunError",
    "Stream",
    "load",
    "log_mel",
    "mfcc",
    "mfcc_files",
]
