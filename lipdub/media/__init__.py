"""ffmpeg I/O: probing, streamed decoding/encoding, muxing and atomic outputs."""
from .atomic import atomic_output, scratch_dir
from .mux import mux
from .probe import probe
from .video import VideoWriter, iter_frames, read_frames

__all__ = ["probe", "iter_frames", "read_frames", "VideoWriter", "mux", "atomic_output", "scratch_dir"]
