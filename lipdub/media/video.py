"""Streamed decoding and encoding through ffmpeg pipes (bounded memory, whatever the length).

Frames are RGB uint8 arrays [H, W, 3] in display orientation (ffmpeg applies the rotation),
delivered at the constant rate ``info.fps`` (variable-frame-rate input is resampled by ffmpeg's fps
filter). Frame k is the picture shown at time k / fps from the start of the video stream.
"""
from __future__ import annotations

import math
import queue
import re
import subprocess
import tempfile
import threading
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .. import interrupt
from ..errors import InputError, MediaError
from ..types import VideoInfo
from .frame import YuvFrame
from .probe import check_interrupted, stream_extra
from .proc import POLL_S, popen, tool_path
from .proc import wait as wait_child

# Memory budget for a chunk of frames decoded ahead to be played backwards (ping-pong).
BACKWARD_CHUNK_BYTES = 192 * 1024 * 1024
# Forward gaps up to this many frames are decoded and skipped instead of seeking.
SKIP_FRAMES = 48
# Frames decoded ahead of the consumer by a background thread.
PREFETCH = 3
# How long cleanup waits for a background thread (it polls every POLL_S, so this is plenty).
JOIN_S = 2.0


def _pipe_size(frame_bytes: int) -> int:
    """Pipe buffer for frames of ``frame_bytes``: one frame if the system allows it (a 64 KB pipe
    makes ffmpeg and lipdub wait on each other dozens of times a frame)."""
    try:
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        limit = 1 << 20
    return max(1 << 16, min(frame_bytes, limit))


def _tail(fh) -> str:
    try:
        fh.seek(0)
        return fh.read()[-4000:].decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


# YUV <-> RGB. ffmpeg hands over 8-bit limited-range yuv420p and OpenCV converts it (BT.601, the
# same matrix both ways): decode then encode gives back the source's YUV values (within 0.01 levels
# on average; ffmpeg's default swscale path darkens luma by about one level and its accurate path is
# four times slower). Odd sizes, which OpenCV's I420 conversion cannot take, go through ffmpeg's
# accurate path instead. The source's colour tags are copied to the output so players show it as
# they showed the source.
SWS = "accurate_rnd+full_chroma_int"
_COLOR_TAGS = {"color_space": "-colorspace", "color_primaries": "-color_primaries",
               "color_transfer": "-color_trc"}


def source_extra(info: VideoInfo) -> dict:
    """Stream index, timing and colour facts about ``info.path`` that VideoInfo does not carry."""
    return stream_extra(info)


def _yuv_path(info: VideoInfo) -> bool:
    """True when frames travel as yuv420p and OpenCV converts them (even sizes)."""
    return info.width % 2 == 0 and info.height % 2 == 0


def _to_pipe_format(info: VideoInfo) -> tuple[str, str]:
    """(filter chain tail, pipe pix_fmt) that turn decoded pictures into what the pipe carries."""
    if _yuv_path(info):
        if info.pix_fmt == "yuv420p" and not source_extra(info)["full_range"]:
            return "format=yuv420p", "yuv420p"
        return f"scale=flags={SWS}:out_range=tv,format=yuv420p", "yuv420p"
    return f"scale=flags={SWS}:in_color_matrix=bt601:out_range=pc,format=rgb24", "rgb24"


def _decode_args(info: VideoInfo, start: int, seek: bool = True) -> tuple[list[str], str, int | None]:
    """Input options, filter chain and expected first slot for a decode that starts at ``start``.

    Timestamps are kept as stored (-copyts) and resampled onto the grid of slots k / fps by the
    fps filter (slot = nearest, halves away from zero, as the filter rounds). Frame k of the video
    is slot s0 + k, where s0 is the slot of the first video timestamp, so a decode that starts
    after a seek lands on the same pictures as one from the beginning. The seek goes a little
    early (two seconds for variable frame rate, whose frames may sit far from the grid) and a trim
    after the fps filter drops the slots before ``start``; showinfo reports the first slot kept so
    a demuxer that seeks too far (MPEG-TS without enough key frames) can be caught.
    """
    fps = Fraction(info.fps)
    extra = source_extra(info)
    vs, fs = extra["vstart"], extra["fstart"]
    x = vs * fps
    s0 = int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)
    chain = f"fps={fps.numerator}/{fps.denominator}"
    rgb = _to_pipe_format(info)[0]
    if start <= 0:
        return ["-copyts"], f"{chain},{rgb}", None
    slot = s0 + start
    ss = (slot - 1) / fps - (2.0 if info.vfr else 0.0) - fs
    if not seek or ss <= 0:
        return ["-copyts"], f"{chain},trim=start_pts={slot},{rgb}", None
    return ["-copyts", "-ss", f"{float(ss):.6f}"], f"{chain},trim=start_pts={slot},showinfo,{rgb}", slot


class _SeekMissed(Exception):
    pass


_SHOWINFO = re.compile(rb"n:\s*0\s+pts:\s*(-?\d+)")


class _End:
    """Marks the end of a decode in the prefetch queue (with the feeder's exception, if any)."""

    def __init__(self, error: BaseException | None = None):
        self.error = error


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put unless ``stop`` is set first; True when put."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            pass
    return False


def _decode(info: VideoInfo, start: int, count: int, seek: bool, yuv: bool = False) -> Iterator[np.ndarray]:
    """Up to ``count`` frames from one ffmpeg process (fewer if the file ends), as YuvFrames when
    ``yuv`` and the pipe carries yuv420p, else RGB arrays. A background
    thread reads and converts up to PREFETCH frames ahead, so decoding overlaps the caller's work.
    Raises _SeekMissed before the first frame when the seek landed elsewhere, MediaError when
    ffmpeg fails outright."""
    w, h = info.width, info.height
    pre, chain, slot = _decode_args(info, start, seek)
    pix = _to_pipe_format(info)[1]
    level = ["-v", "info", "-nostats"] if slot is not None else ["-v", "error"]
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", *level, *pre, "-i", tool_path(info.path),
           "-map", f"0:{source_extra(info)['index']}", "-an", "-sn", "-dn", "-vf", chain,
           "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", pix, "pipe:1"]
    nbytes = w * h * 3 // 2 if pix == "yuv420p" else w * h * 3
    err = tempfile.TemporaryFile()
    try:
        proc = popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, pipesize=_pipe_size(nbytes))
    except FileNotFoundError:
        err.close()
        raise MediaError("ffmpeg not found; install ffmpeg (e.g. apt-get install ffmpeg)") from None
    frames: queue.Queue = queue.Queue(maxsize=PREFETCH)
    stop = threading.Event()

    def feed():
        error = None
        try:
            for _ in range(count):
                buf = np.empty(nbytes, np.uint8)
                view, filled = memoryview(buf), 0
                while filled < nbytes:
                    n = proc.stdout.readinto(view[filled:])
                    if not n:
                        break
                    filled += n
                if filled < nbytes or stop.is_set():
                    break
                if pix == "yuv420p":
                    frame = buf.reshape(h * 3 // 2, w)
                    frame = YuvFrame(frame) if yuv else cv2.cvtColor(frame, cv2.COLOR_YUV2RGB_I420)
                else:
                    frame = buf.reshape(h, w, 3)
                if not _put(frames, frame, stop):
                    return
        except Exception as e:  # handed to the consumer
            error = e
        _put(frames, _End(error), stop)

    thread = threading.Thread(target=feed, name="lipdub-decoder-feed", daemon=True)
    thread.start()
    got = 0
    try:
        while True:
            try:
                item = frames.get(timeout=POLL_S)
            except queue.Empty:
                interrupt.check()
                continue
            interrupt.check()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                break
            if got == 0 and slot is not None:
                err.seek(0)
                m = _SHOWINFO.search(err.read())
                if m and int(m.group(1)) != slot:
                    raise _SeekMissed()
            got += 1
            yield item
        rc = wait_child(proc, 60) if got < count else None
        check_interrupted(rc)
        if got == 0:
            if slot is not None:
                raise _SeekMissed()
            if rc != 0:
                raise MediaError(f"{info.path}: ffmpeg could not decode the video", _tail(err))
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
        thread.join(JOIN_S)
        wait_child(proc)
        proc.stdout.close()
        err.close()


def iter_frames(info: VideoInfo, start: int = 0, stop: int | None = None, yuv: bool = False) -> Iterator[np.ndarray]:
    """Yield frames start..stop-1 (default: to info.n_frames), each a fresh writable RGB uint8
    array [info.height, info.width, 3] (yuv: a lipdub.media.frame.YuvFrame where the video's size
    allows, which the helpers there, VideoWriter and the renderers take as they take RGB).
    Exactly ``stop - start`` frames come out: when the file ends a frame or two early (container estimates), the last frame is repeated; when it ends much
    earlier, InputError (truncated file). One ffmpeg process, closed when the generator is."""
    stop = info.n_frames if stop is None else min(int(stop), info.n_frames)
    start = max(0, int(start))
    count = stop - start
    if count <= 0:
        return
    got, last = 0, None
    gen = _decode(info, start, count, seek=True, yuv=yuv)
    try:
        try:
            first = next(gen, None)
        except _SeekMissed:  # the demuxer could not seek there: decode from the start instead
            gen = _decode(info, start, count, seek=False, yuv=yuv)
            first = next(gen, None)
        if first is not None:
            last, got = first, 1
            yield first
            for last in gen:
                got += 1
                yield last
    finally:
        gen.close()
    if got < count:
        tolerance = max(2, math.ceil(0.02 * info.n_frames))
        if last is None or count - got > tolerance:
            raise InputError(f"{info.path}: video ends early: decoded {start + got} of {info.n_frames} "
                             "frames (truncated or corrupt file?)")
        for _ in range(count - got):
            yield YuvFrame(last.yuv.copy()) if isinstance(last, YuvFrame) else last.copy()


def read_frames(info: VideoInfo, schedule, yuv: bool = False) -> Iterator[np.ndarray]:
    """Yield source frames in the order of ``schedule`` ([n] ints in [0, info.n_frames)), one per
    entry. Forward runs (steps of 0 or +1, small jumps; larger jumps seek) stream from one decoder; backward runs
    (ping-pong) are decoded forwards in chunks of bounded memory (BACKWARD_CHUNK_BYTES) after a
    seek and played back from the chunk. Repeated indices yield the same array object: treat
    yielded frames as read-only or copy them. yuv: as for iter_frames."""
    sched = np.asarray(schedule, dtype=np.int64).reshape(-1)
    if len(sched) and (sched.min() < 0 or sched.max() >= info.n_frames):
        raise ValueError(f"schedule indexes frames {sched.min()}..{sched.max()} of {info.n_frames}")
    frame_bytes = info.width * info.height * 3 // (2 if yuv and _yuv_path(info) else 1)
    chunk = max(4, BACKWARD_CHUNK_BYTES // frame_bytes)
    cache: dict[int, np.ndarray] = {}
    fwd, fwd_pos = None, -1  # open forward decoder and the index of the frame it yields next
    try:
        k, n = 0, len(sched)
        while k < n:
            i = int(sched[k])
            if i in cache:
                yield cache[i]
                k += 1
                continue
            if k + 1 < n and sched[k + 1] == i - 1:  # a backward run (steps of -1 or 0) starts here
                m = k
                while m + 1 < n and 0 <= sched[m] - sched[m + 1] <= 1:
                    m += 1
                lo = max(int(sched[m]), i - chunk + 1)
                cache = {}  # free the previous chunk before decoding the next
                gen = iter_frames(info, lo, i + 1, yuv)
                try:
                    cache = dict(zip(range(lo, i + 1), gen))
                finally:
                    gen.close()
                continue
            if fwd is None or i < fwd_pos or i - fwd_pos > SKIP_FRAMES:
                if fwd is not None:
                    fwd.close()
                fwd, fwd_pos = iter_frames(info, i, yuv=yuv), i
            while fwd_pos < i:
                next(fwd)
                fwd_pos += 1
            frame = next(fwd)
            fwd_pos += 1
            cache = {i: frame}
            yield frame
            k += 1
    finally:
        if fwd is not None:
            fwd.close()


def muxer_args(suffix: str) -> list[str]:
    """ffmpeg's ``-f`` for an output container chosen by the final file's suffix (temporary files
    carry no video suffix, so that a partial one is never taken for a video)."""
    fmt = {".mp4": "mp4", ".m4v": "ipod", ".mov": "mov", ".mkv": "matroska", ".wav": "wav"}.get(suffix.lower())
    return ["-f", fmt] if fmt else []


def _check_disk(path: Path, tail: str) -> None:
    """DiskFullError naming the output folder when ffmpeg ran out of space."""
    if "No space left on device" in tail or "Disk quota exceeded" in tail:
        from .atomic import disk_full

        raise disk_full(path)


class VideoWriter:
    """H.264 yuv420p encoder fed RGB uint8 frames [height, width, 3] through an ffmpeg pipe.

    yuv420p needs even sizes: an odd width or height is padded by repeating the last column or
    row (853x480 is stored as 854x480), so no pixel is resampled. RGB -> limited-range BT.601
    yuv420p is done by OpenCV (see the note on YUV above). ``like``: the source video, whose pixel
    aspect (SAR) and colour tags are carried over so that pixels left alone decode as they did in
    the source. ``audio``: an audio file (e.g. a WAV) to encode as AAC into the same file in the
    same pass (no separate mux). A background thread feeds ffmpeg (at most QUEUE converted frames
    wait), so the caller renders the next frame while the encoder works. Use as a context manager; on an
    exception ffmpeg is stopped and the partial file is left for the caller's cleanup (see
    atomic_output).
    """

    QUEUE = 4

    def __init__(self, path, width: int, height: int, fps, crf: int = 18, preset: str = "veryfast",
                 like: VideoInfo | None = None, audio=None, audio_bitrate: str = "192k", container: str | None = None):
        self.path = Path(path)
        # the container, by the final file's suffix (``path`` may be a temporary name without one)
        self.container = (container or self.path.suffix).lower()
        self.audio, self.audio_bitrate = (Path(audio) if audio is not None else None), audio_bitrate
        self.width, self.height = int(width), int(height)
        self.fps = Fraction(fps)
        self.crf, self.preset, self.like = int(crf), preset, like
        self.out_width, self.out_height = self.width + self.width % 2, self.height + self.height % 2
        self.frames = 0
        self._proc = None
        self._err = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._failed = False

    def __enter__(self) -> "VideoWriter":
        fps = self.fps
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{self.out_width}x{self.out_height}",
               "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "pipe:0"]
        if self.audio is not None:
            cmd += ["-i", tool_path(self.audio), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", self.audio_bitrate]
        else:
            cmd += ["-an"]
        cmd += ["-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf)]
        sar = Fraction(self.like.sar) if self.like is not None else Fraction(1)
        if sar != 1:
            cmd += ["-vf", f"setsar={sar.numerator}/{sar.denominator}"]
        cmd += ["-pix_fmt", "yuv420p", "-color_range", "tv"]
        if self.like is not None:
            for key, value in source_extra(self.like)["color"].items():
                cmd += [_COLOR_TAGS[key], value]
        if self.container in (".mp4", ".m4v", ".mov"):
            cmd += ["-movflags", "+faststart"]
        cmd += [*muxer_args(self.container), tool_path(self.path)]
        self._err = tempfile.TemporaryFile()
        try:
            self._proc = popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err,
                               pipesize=_pipe_size(self.out_width * self.out_height * 3 // 2))
        except FileNotFoundError:
            raise MediaError("ffmpeg not found; install ffmpeg (e.g. apt-get install ffmpeg)") from None
        self._queue = queue.Queue(maxsize=self.QUEUE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="lipdub-encoder-feed", daemon=True)
        self._thread.start()
        return self

    def _pump(self) -> None:
        """Background thread: write queued YUV frames to ffmpeg until the None sentinel."""
        while not self._stop.is_set():
            try:
                buf = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if buf is None:
                return
            if self._failed:
                continue  # keep draining so the producer never blocks
            try:
                self._proc.stdin.write(buf)
            except (BrokenPipeError, OSError, ValueError):
                self._failed = True

    def _raise_failure(self) -> None:
        self._finish_thread()
        check_interrupted(wait_child(self._proc))
        tail = _tail(self._err)
        _check_disk(self.path, tail)
        raise MediaError(f"{self.path}: ffmpeg stopped while encoding", tail)

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame [height, width, 3] (converted before this returns, so the
        caller may reuse the array) or a YuvFrame of that size (sent as it is: do not change it)."""
        if isinstance(frame, YuvFrame):
            if frame.shape != (self.out_height, self.out_width, 3):
                raise ValueError(f"frame {frame.shape} != ({self.out_height}, {self.out_width}, 3)")
            if self._failed:
                self._raise_failure()
            self._put(memoryview(frame.yuv).cast("B"))
            self.frames += 1
            return
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.shape} {frame.dtype} != ({self.height}, {self.width}, 3) uint8")
        if self._failed:
            self._raise_failure()
        if (self.out_width, self.out_height) != (self.width, self.height):
            frame = np.pad(frame, ((0, self.out_height - self.height), (0, self.out_width - self.width), (0, 0)),
                           mode="edge")
        yuv = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420)
        self._put(memoryview(yuv).cast("B"))
        self.frames += 1

    def _put(self, item) -> None:
        """Queue ``item`` for the feeder, waiting in short steps (a Ctrl-C or a dead feeder ends it)."""
        while True:
            interrupt.check()
            try:
                self._queue.put(item, timeout=POLL_S)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._failed = True
                    self._raise_failure()

    def _finish_thread(self) -> None:
        """Tell the feeder to stop (and send the sentinel, making room if the queue is full) and
        wait for it, a bounded time: it polls every POLL_S."""
        if self._thread is None:
            return
        self._stop.set()
        while True:
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
        self._thread.join(JOIN_S)
        self._thread = None

    def close(self) -> None:
        """Finish the file; MediaError when ffmpeg failed."""
        if self._proc is None:
            return
        self._put(None)  # after every queued frame
        while self._thread.is_alive():
            self._thread.join(POLL_S)
            interrupt.check()
        self._thread = None
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        while True:
            try:
                rc = self._proc.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                interrupt.check()
        tail = _tail(self._err)
        self._err.close()
        self._proc = None
        check_interrupted(rc)
        _check_disk(self.path, tail)
        if rc != 0 or self._failed:
            raise MediaError(f"{self.path}: ffmpeg failed to encode the video", tail)
        if self.frames == 0:
            raise MediaError(f"{self.path}: no frames were written")

    def abort(self) -> None:
        """Stop ffmpeg without finishing the file."""
        if self._proc is None:
            return
        self._failed = True
        if self._proc.poll() is None:
            self._proc.kill()
        self._finish_thread()
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        wait_child(self._proc)
        self._err.close()
        self._proc = None

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.close()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()
