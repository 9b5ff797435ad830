"""Performance-driven lip motion (``lipdub run --lips-from ACTOR.mp4``): the lips follow a voice
actor's own face instead of a prediction from the audio.

The actor video is tracked and aligned like any input (lipdub.style.analyse_video), giving the
actor's lips in the actor's own canonical face space. Each frame is then **retargeted** onto the
speaker, relative to each face's own resting shape and range of motion:

- ``rest``: the resting lips (closed, silent frames; lipdub.style.pack.rest_shape), ``wide``: a
  robust widest opening (the median shape of the frames in the top 5 % of inner-lip opening);
  ``R = wide - rest`` is that face's range of motion, per point.
- An actor frame's displacement from the actor's rest, ``D``, splits into an opening amount
  ``o = <D, R_actor> / <R_actor, R_actor>`` (0 at rest, 1 at the actor's widest) and a residual
  (rounding, spreading, asymmetry: what the opening does not explain).
- The speaker's lips are ``rest_speaker + o * R_speaker + size * residual``, ``size`` being the
  ratio of the two resting mouth widths. An actor opening to half its range opens the speaker to
  half of theirs, in the speaker's own way of opening.

A speaker whose reference does not move (a photo) has no range of its own: the actor's range,
scaled by ``size``, stands in. An actor who barely moves is measured against at least a quarter
of the speaker's range, so that tracking noise is not blown up into motion.

Time: the actor video is aligned with the new audio at its start (it is the recording of that
speech) and sampled at each output frame's time, interpolated between the actor's two nearest
frames, so another frame rate is fine. The length policy applies to it as to the audio: output
frames past the end of the actor video (a shorter actor video, or the silence that pads a short
audio) and frames where the actor's face is lost follow the audio-driven motion instead, with a
short cross-fade (FADE frames) at each switch; actor frames past the output's end (a longer actor
video, or ``--length-policy trim``) are not used.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np

from ..face.landmarks import mouth_opening, mouth_width
from ..types import LipMotion, StylePack

WIDE_PERCENTILE = 95  # the actor's / speaker's "widest" opening: robust to a few bad frames
MIN_RANGE_SHARE = 0.25  # an actor's range counts as at least this share of the speaker's
MIN_SPEAKER_RANGE = 0.01  # canonical units (inter-ocular distance 1) of inner-lip opening
OPENING_LIMITS = (-0.5, 1.6)  # opening amounts beyond these (tracking failures) are clipped
FADE = 3  # output frames of cross-fade between video-driven and audio-driven motion
LENGTH_SLACK_S = 0.5  # actor video and audio lengths this close count as equal (no warning)
GAIN = 1.0  # the actor's opening is passed on as it is (no compensation for the renderer)


@dataclass(frozen=True)
class LipRange:
    """A face's resting lips and robust widest opening, [40, 2] float64 each, in that face's
    canonical space (lipdub.types: inter-ocular distance 1)."""

    rest: np.ndarray
    wide: np.ndarray

    @property
    def motion(self) -> np.ndarray:
        """[40, 2] rest -> widest displacement."""
        return self.wide - self.rest

    @property
    def opening(self) -> float:
        """Inner-lip opening gained from rest to widest (canonical units)."""
        return float(mouth_opening(self.wide) - mouth_opening(self.rest))


def lip_range(lips: np.ndarray, voiced: np.ndarray | None = None, rest: np.ndarray | None = None) -> LipRange:
    """The LipRange of a lip track [T, 40, 2] (NaN rows where no face). voiced: [T] voice
    activity (silent frames define the rest shape), or None. rest: a known rest shape to use."""
    from ..style.pack import rest_shape

    lips = np.asarray(lips, np.float64)
    ok = np.isfinite(lips).all(axis=(1, 2))
    if not ok.any():
        raise ValueError("lip_range needs at least one frame with lips")
    if rest is None:
        v = None if voiced is None or len(voiced) != len(lips) else np.asarray(voiced)
        rest = rest_shape(lips, v)
    op = mouth_opening(lips[ok])
    wide = np.median(lips[ok][op >= np.percentile(op, WIDE_PERCENTILE)], axis=0)
    return LipRange(np.asarray(rest, np.float64), wide.astype(np.float64))


def retarget(actor_lips: np.ndarray, actor: LipRange, speaker: LipRange, gain: float = GAIN) -> np.ndarray:
    """[T, 40, 2] speaker lips for the actor's [T, 40, 2] lips (NaN rows stay NaN): the actor's
    opening relative to the actor's rest and range, applied to the speaker's (module docstring)."""
    a = np.asarray(actor_lips, np.float64)
    size = float(np.clip(mouth_width(speaker.rest) / max(mouth_width(actor.rest), 1e-9), 0.5, 2.0))
    r_a = actor.motion
    r_s = speaker.motion if speaker.opening >= MIN_SPEAKER_RANGE else size * r_a
    floor = MIN_RANGE_SHARE * np.linalg.norm(r_s) / size
    denom = max(float(np.sum(r_a * r_a)), floor ** 2, 1e-12)
    d = a - actor.rest
    o = np.tensordot(d, r_a, axes=([1, 2], [0, 1])) / denom  # [T] opening amount
    resid = d - o[:, None, None] * r_a
    o = np.clip(gain * o, *OPENING_LIMITS)
    return (speaker.rest + o[:, None, None] * r_s + size * resid).astype(np.float32)


def output_times(n_out: int, fps_out, fps_src, n_src: int) -> np.ndarray:
    """[n_out] float64 position of each output frame on the source's frame axis (frame k of the
    source is shown at k / fps_src seconds, output frame t at t / fps_out); NaN past the
    source's last frame (more than half a source frame after it)."""
    u = np.arange(int(n_out), dtype=np.float64) * float(Fraction(fps_src) / Fraction(fps_out))
    u[u > n_src - 0.5] = np.nan
    return u


def resample(lips: np.ndarray, u: np.ndarray) -> np.ndarray:
    """[len(u), 40, 2] ``lips`` [N, 40, 2] (NaN rows: no face) at fractional frame positions ``u``:
    linear between the two nearest frames when both have a face, the nearer one with a face
    when only one has, NaN when neither does (or u is NaN)."""
    lips = np.asarray(lips, np.float64)
    n = len(lips)
    out = np.full((len(u),) + lips.shape[1:], np.nan)
    ok = np.isfinite(lips).all(axis=(1, 2))
    have = np.isfinite(u)
    uc = np.clip(np.where(have, u, 0), 0, n - 1)
    k0 = np.floor(uc).astype(np.int64)
    k1 = np.minimum(k0 + 1, n - 1)
    w = (uc - k0)[:, None, None]
    both = have & ok[k0] & ok[k1]
    out[both] = ((1 - w) * lips[k0] + w * lips[k1])[both]
    near, far = np.where(w[:, 0, 0] < 0.5, k0, k1), np.where(w[:, 0, 0] < 0.5, k1, k0)
    one = have & ~both & (ok[near] | ok[far])
    pick = np.where(ok[near], near, far)
    out[one] = lips[pick[one]]
    return out


def fade_weights(driven: np.ndarray, fade: int = FADE) -> np.ndarray:
    """[T] float64 weight of the video-driven motion: 0 where ``driven`` [T] bool is False, rising
    over ``fade`` frames away from each such frame, 1 elsewhere."""
    driven = np.asarray(driven, bool)
    gaps = np.flatnonzero(~driven)
    if len(gaps) == 0:
        return np.ones(len(driven))
    t = np.arange(len(driven))
    i = np.clip(np.searchsorted(gaps, t), 1, len(gaps)) - 1
    dist = np.minimum(np.abs(t - gaps[i]), np.abs(t - gaps[np.minimum(i + 1, len(gaps) - 1)]))
    return np.clip(dist / float(fade + 1), 0.0, 1.0)


def ranges(mask: np.ndarray) -> list[list[int]]:
    """[[start, stop), ...] runs of True in ``mask``."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2])]


@dataclass(frozen=True)
class DrivenLips:
    """The actor's lips retargeted onto the speaker, per output frame.

    lips: [T, 40, 2] float32 speaker-space lips, NaN rows where the actor video gives none (its
    face is lost there, or it has no frame at that time). weight: [T] float64 share of the
    video-driven motion in each output frame (0: from the audio; see fade_weights). meta: what
    the summary says about it (path, fps, frames, ...). warnings: one-line warnings for the run.
    """

    lips: np.ndarray
    weight: np.ndarray
    meta: dict
    warnings: tuple = ()

    def motion(self, from_audio: Callable[[], LipMotion]) -> LipMotion:
        """The output LipMotion: video-driven where the actor's face is seen, ``from_audio()``
        (called only when needed) elsewhere, cross-faded at each switch."""
        if (self.weight >= 1).all():
            return LipMotion(self.lips.astype(np.float32), engine="video")
        audio = np.asarray(from_audio().lips, np.float64)
        w = self.weight[:, None, None]
        lips = np.where(w > 0, w * np.nan_to_num(self.lips) + (1 - w) * audio, audio)
        return LipMotion(lips.astype(np.float32), engine="video")

    def summary(self) -> dict:
        """The ``lips_from`` part of the run summary: which output frames were driven from video."""
        return dict(self.meta, frames_from_video=int((self.weight > 0).sum()),
                    frames_from_audio=int((self.weight <= 0).sum()), video_ranges=ranges(self.weight > 0))


def speaker_range(pack: StylePack) -> LipRange:
    """The speaker's LipRange from a style pack (its rest_lips and the widest of its lips)."""
    return lip_range(pack.lips, pack.voiced, rest=pack.rest_lips)


def drive(actor_lips: np.ndarray, actor_voiced: np.ndarray | None, actor_fps, pack: StylePack, n_out: int,
          fps_out, fade: int = FADE) -> DrivenLips:
    """DrivenLips for ``n_out`` output frames at ``fps_out`` from the actor's canonical lips
    [N, 40, 2] (NaN where no face) at ``actor_fps`` and the speaker's ``pack``. actor_voiced: [N]
    voice activity of the actor video's own audio, or None (it helps find the actor's rest)."""
    actor_lips = np.asarray(actor_lips, np.float64)
    ok = np.isfinite(actor_lips).all(axis=(1, 2))
    mapped = retarget(actor_lips, lip_range(actor_lips, actor_voiced), speaker_range(pack))
    lips = resample(mapped, output_times(n_out, fps_out, actor_fps, len(actor_lips)))
    driven = np.isfinite(lips).all(axis=(1, 2))
    weight = fade_weights(driven, fade)
    meta = {"fps": str(Fraction(actor_fps)), "frames": int(len(actor_lips)), "face_frames": int(ok.sum())}
    return DrivenLips(lips.astype(np.float32), weight, meta)


def analyse_actor(info, progress: Callable[[str, int, int], None] | None = None
                  ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(lips [N, 40, 2] float64 in the actor's canonical space with NaN rows where no face,
    voiced [N] or None) of the actor video ``info`` (a VideoInfo); (None, None) when it shows no
    face at all. One decode pass (lipdub.style.analyse_video, no style pack); the video's own
    audio, when it has one, only tells the actor's silent frames (for the rest shape)."""
    from ..face.track import canonical_lips
    from ..style import analyse_video

    sub = (lambda stage, done, total: progress("lips-from", done, total)) if progress else None
    track, _ = analyse_video(info, None, want_pack=False, progress=sub)
    if track is None:
        return None, None
    lips = canonical_lips(track).astype(np.float64)
    lips[~np.asarray(track.found, bool)] = np.nan
    voiced = None
    if info.has_audio:
        from ..audio.io import load_video_audio
        from ..audio.vad import voice_activity

        audio = load_video_audio(info)
        if audio is not None:
            voiced = voice_activity(audio, info.fps, len(lips))
    return lips, voiced


def from_video(path, info, pack: StylePack, n_out: int, fps_out, audio_s: float,
               progress: Callable[[str, int, int], None] | None = None) -> DrivenLips:
    """DrivenLips of the actor video at ``path`` (probed as ``info``) for the output: ``n_out``
    frames at ``fps_out`` carrying ``audio_s`` seconds of the new audio. Raises NoFaceError when
    the actor video shows no face at all; warns when the actor's face is lost in some output
    frames or when the actor video and the audio differ in length by more than LENGTH_SLACK_S."""
    from ..errors import NoFaceError

    lips, voiced = analyse_actor(info, progress)
    if lips is None:
        raise NoFaceError(f"{path}: no face found in any frame of the --lips-from video")
    d = drive(lips, voiced, info.fps, pack, n_out, fps_out)
    warnings = []
    actor_s = len(lips) / float(info.fps)
    covered = np.isfinite(output_times(n_out, fps_out, info.fps, len(lips)))
    lost = int((covered & (d.weight <= 0)).sum())
    if lost:
        warnings.append(f"{path}: the actor's face is lost in {lost} of {int(covered.sum())} output frames; "
                        "the lips follow the audio there")
    if actor_s < audio_s - LENGTH_SLACK_S:
        warnings.append(f"{path}: the --lips-from video ({actor_s:.2f} s) is shorter than the audio "
                        f"({audio_s:.2f} s): after {actor_s:.2f} s the lips follow the audio")
    elif actor_s > audio_s + LENGTH_SLACK_S:
        warnings.append(f"{path}: the --lips-from video ({actor_s:.2f} s) is longer than the audio "
                        f"({audio_s:.2f} s): it is aligned at its start and its last {actor_s - audio_s:.2f} s "
                        "are not used")
    meta = dict(d.meta, path=str(path), duration=round(actor_s, 3))
    return DrivenLips(d.lips, d.weight, meta, tuple(warnings))
