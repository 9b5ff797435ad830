"""Detections stored in large blocks give the same face track as one array per frame."""
import numpy as np
import pytest

from lipdub.face.detect import Detections
from lipdub.face.track import build_track


def _frames(T=300, seed=0):
    """Per-frame faces: none at first, then one or two faces, with gaps."""
    rng = np.random.default_rng(seed)
    base = (rng.normal(size=(468, 2)) * 40 + 300).astype(np.float32)
    out = []
    for t in range(T):
        n = 0 if t < 4 else (0, 1, 1, 1, 2)[t % 5]
        out.append(np.stack([base + 0.1 * t + 400 * k + rng.normal(size=(468, 2)).astype(np.float32)
                             for k in range(n)]) if n else np.zeros((0, 468, 2), np.float32))
    return out


@pytest.fixture
def stored(monkeypatch):
    """(per-frame arrays, the same frames stored in Detections blocks of 7 frames)."""
    monkeypatch.setattr(Detections, "BLOCK", 7)
    frames = _frames()
    d = Detections()
    for f in frames:
        d.append(f)
    return frames, d


def test_blocks_hold_every_frame(stored):
    frames, d = stored
    assert len(d) == len(frames)
    for t, f in enumerate(frames):
        assert np.array_equal(d[t], f)


@pytest.mark.filterwarnings("ignore:Degrees of freedom")
def test_track_from_blocks_matches_lists(stored):
    frames, d = stored
    a, b = build_track(list(frames)), build_track(d)
    for name in ("points", "found", "to_canon", "template"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    # linking freed every block but the last: the detections are not held twice
    assert sum(blk is not None for blk in d._blocks) == 1
    with pytest.raises(IndexError):
        d[11]


def test_link_puts_each_face_in_one_track_and_nan_elsewhere(stored):
    from lipdub.face.track import _link

    frames, d = stored
    tracks = _link(d)
    assert len(tracks) == 2
    for t, faces in enumerate(frames):
        rows = [tr[t] for tr in tracks if np.isfinite(tr[t]).all()]
        assert all(np.isnan(tr[t]).all() or np.isfinite(tr[t]).all() for tr in tracks)
        assert len(rows) == len(faces)
        for face in faces:  # the face 400 px to the right stays in its own track
            assert any(np.array_equal(face, r) for r in rows)
    left = np.nanmean(tracks[0][:, :, 0]) < np.nanmean(tracks[1][:, :, 0])
    assert np.isfinite(tracks[0 if left else 1][4:, 0, 0]).sum() == sum(len(f) > 0 for f in frames)
