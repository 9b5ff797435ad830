"""Small frozen dataclasses exchanged between the pipeline stages.

Numpy at the boundaries, tensors only inside a stage. ``T`` always means video frames.
Canonical face space: a similarity transform (scale, rotation, translation) fitted on rigid face
points maps each frame's landmarks onto the speaker's template, whose inter-ocular distance is 1
and whose rigid points are centred on the origin (x right, y down). Lip shapes live in that space.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction
from pathlib import Path

import numpy as np


class WeightsConfig:
    """For a model's shape (a dataclass) that travels with its weights in the safetensors
    metadata: ``to_dict()``, and ``from_dict(d)`` ignoring unknown keys and turning JSON lists
    back into tuples."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class VideoInfo:
    """What ffprobe says about a video, in display orientation.

    width, height: decoded frame size in pixels after rotation is applied (what frames look like).
    fps: exact frame rate as a fraction (e.g. 30000/1001). For variable frame rate input (vfr=True)
    frames are decoded at this constant rate. n_frames: frames that decoding yields (estimated
    from duration * fps when the container does not say). duration: seconds.
    """

    path: Path
    width: int
    height: int
    fps: Fraction
    n_frames: int
    duration: float
    rotation: int = 0
    vfr: bool = False
    pix_fmt: str = "yuv420p"
    codec: str = ""
    sar: Fraction = Fraction(1)
    has_audio: bool = False


@dataclass(frozen=True)
class AudioTrack:
    """Mono float32 samples in [-1, 1] at ``sample_rate`` (always 16000 after loading)."""

    samples: np.ndarray
    sample_rate: int
    source: Path | None = None

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class AudioFeatures:
    """Audio features aligned to video frame times.

    feats: [T, 512] float16 speech features: Whisper-base encoder states at the centre of frame
      t, (t + 0.5) / fps (lipdub.audio.speech); [T, 0] where there is no audio.
    energy: [T] float32, loudness in dB relative to the recording's voiced median.
    voiced: [T] float32 in [0, 1], probability that speech is present at frame t.
    fps: the video frame rate the rows are aligned to.
    speech_from: what ``voiced`` comes from: "vad" (the voice detector) or "phones" (the phone
      recogniser, where the detector missed speech over music or noise).
    """

    feats: np.ndarray
    energy: np.ndarray
    voiced: np.ndarray
    fps: Fraction
    speech_from: str = "vad"

    def __len__(self) -> int:
        return len(self.feats)


@dataclass(frozen=True)
class FaceTrack:
    """One tracked face across a video.

    points: [T, P, 2] float32 landmarks in frame pixels (P = 468, MediaPipe face-mesh order),
      NaN rows where no face was found; temporally smoothed.
    found: [T] bool, a face was found (or safely interpolated) at frame t.
    to_canon: [T, 2, 3] float32 similarity matrices mapping frame pixels to canonical face space.
    template: [P, 2] float32 the speaker's mean face in canonical space.
    held: [T] bool, the picture at t repeats frame t - 1's where the faces are (a video made from
      fewer frames a second than it plays); None when not known.
    """

    points: np.ndarray
    found: np.ndarray
    to_canon: np.ndarray
    template: np.ndarray
    held: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class LipMotion:
    """Lip shape per output frame, in canonical face space.

    lips: [T, L, 2] float32 (L = len(lipdub.face.landmarks.LIPS) = 40: 20 outer then 20 inner
      points). engine: which motion engine produced it. lead_s: seconds by which the motion was
      moved ahead of the sound to keep the speaker's own timing (lipdub.motion.lead).
    """

    lips: np.ndarray
    engine: str = "stage1"
    lead_s: float = 0.0

    def __len__(self) -> int:
        return len(self.lips)


@dataclass(frozen=True)
class StylePack:
    """A speaker's style reference: how this person's lips move for given sounds, and what their
    mouth looks like.

    feats: [N, 512] float16 speech features of the reference frames (see AudioFeatures.feats);
      [N, 0] when the reference has no audio (a photo).
    voiced: [N] float32 voice activity of the reference frames.
    lips: [N, L, 2] float32 canonical lip shapes of the reference frames.
    pose: [N, 3] float32 head yaw, pitch, roll proxies (unitless, from the landmark geometry).
    rest_lips: [L, 2] float32 the speaker's resting (closed, silent) lip shape.
    template: [P, 2] float32 the speaker's mean face in canonical space.
    crops: [K, S, S, 3] uint8 RGB mouth-region exemplar images in crop space (see
      lipdub.face.align.CropSpace), K <= N.
    crop_index: [K] int64 which reference frame each exemplar comes from.
    crop_points: [K, P, 2] float32 all face landmarks of each exemplar in crop pixels.
    fps: reference frame rate. meta: source name, source sha256, format version, etc.
    """

    feats: np.ndarray
    voiced: np.ndarray
    lips: np.ndarray
    pose: np.ndarray
    rest_lips: np.ndarray
    template: np.ndarray
    crops: np.ndarray
    crop_index: np.ndarray
    crop_points: np.ndarray
    fps: Fraction
    meta: dict = field(default_factory=dict)
