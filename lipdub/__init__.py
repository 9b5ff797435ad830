"""lipdub: style-preserving lip sync for video dubbing."""
import os

# One BLAS thread. lipdub computes beside the main thread (lipdub.background) while the main
# thread starts ffmpeg children, and OpenBLAS's fork handler deadlocks against a threaded BLAS
# call running in another thread (lipdub.background also covers numpy imported before lipdub).
# lipdub's matrices are small: a BLAS thread pool would only compete with its own threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
