"""Type stubs of speechrnn (the extension module speechrnn._speechrnn and its exceptions)."""

from os import PathLike
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, "PathLike[str]"]
_Samples = npt.ArrayLike
_Preset = Literal["kaldi", "librosa", "htk"]

OVERRIDES: List[str]

class FeatureError(Exception): ...
class OptionsError(FeatureError, ValueError): ...
class AudioError(FeatureError, ValueError): ...
class AudioFileError(FeatureError, OSError): ...
class RunError(FeatureError, OSError): ...

def load(
    path: _Path, sr: Optional[int] = None, mono: bool = True
) -> Tuple[npt.NDArray[np.float32], int]:
    """Reads a WAV file as float32 at ±1: (y, sr); y is [channels, samples] unless mono."""

def mfcc(y: _Samples, sr: int, preset: _Preset = "kaldi", **overrides: Any) -> npt.NDArray[np.float32]:
    """MFCCs as [frames, n_mfcc] (or [batch, frames, n_mfcc] for a 2-D batch)."""

def log_mel(
    y: _Samples, sr: int, preset: _Preset = "kaldi", **overrides: Any
) -> npt.NDArray[np.float32]:
    """Log-mel energies as [frames, n_mels] (or [batch, frames, n_mels] for a 2-D batch)."""

def mfcc_files(
    paths: Sequence[_Path],
    preset: _Preset = "kaldi",
    threads: Optional[int] = None,
    sr: Optional[int] = None,
    **overrides: Any,
) -> List[npt.NDArray[np.float32]]:
    """MFCCs of many WAV files on several threads, the GIL released."""

class FeatureStream:
    """Features of audio that arrives in chunks, equal to the whole signal's."""

    def __init__(
        self,
        sr: int,
        preset: _Preset = "kaldi",
        feature: Literal["mfcc", "log_mel"] = "mfcc",
        **overrides: Any,
    ) -> None: ...
    @property
    def dim(self) -> int: ...
    def push(self, chunk: _Samples) -> npt.NDArray[np.float32]:
        """The frames this chunk completed, [new_frames, dim]."""
    def finish(self) -> npt.NDArray[np.float32]:
        """The frames that reach past the end; the stream takes no more chunks."""

class Stream:
    """A live recogniser from Recogniser.stream()."""

    def push(self, chunk: _Samples) -> List[Dict[str, Any]]:
        """The events (partial, final, detection) this chunk completed."""
    def finish(self) -> List[Dict[str, Any]]:
        """The last events; the stream takes no more chunks."""

class Recogniser:
    """A finished run of `experiment train`, on the CPU."""

    def __init__(self, run_dir: _Path, precision: Literal["f32", "bf16", "int8"] = "f32") -> None: ...
    @property
    def labels(self) -> List[str]: ...
    @property
    def objective(self) -> Literal["classes", "sequences"]: ...
    @property
    def sample_rate(self) -> int: ...
    def predict(self, y: Union[_Path, _Samples], sr: Optional[int] = None) -> Dict[str, Any]:
        """{"label", "probability", "probabilities"} or, for CTC runs, {"text", "labels"}."""
    def stream(
        self,
        sr: Optional[int] = None,
        trailing_silence: float = 0.6,
        idle_silence: float = 2.4,
        max_utterance: float = 20.0,
    ) -> Stream: ...
