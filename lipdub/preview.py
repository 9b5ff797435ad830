"""Contact sheet: source frames above dubbed frames at several moments, for a person to look at."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def contact_sheet(source: Path, dubbed: Path, out: Path, n: int = 6, height: int = 200) -> Path:
    """Write a PNG: row 1 source frames, row 2 dubbed frames, at n evenly spaced moments."""
    import cv2

    from .media.output import atomic_output
    from .media.probe import probe
    from .media.video import iter_frames

    src, dub = probe(source), probe(dubbed)
    picks = np.linspace(0, dub.n_frames - 1, n + 2)[1:-1].astype(int)
    rows = []
    for info, idx in ((src, np.minimum(picks, src.n_frames - 1)), (dub, picks)):
        want, tiles = set(idx.tolist()), {}
        for t, f in enumerate(iter_frames(info, 0, int(idx.max()) + 1)):
            if t in want:
                w = round(f.shape[1] * height / f.shape[0])
                tiles[t] = cv2.resize(f, (w, height), interpolation=cv2.INTER_AREA)
        rows.append(np.concatenate([tiles[i] for i in idx], 1))
    width = min(r.shape[1] for r in rows)
    sheet = np.concatenate([r[:, :width] for r in rows], 0)
    out = Path(out)
    with atomic_output(out) as tmp:
        cv2.imwrite(str(tmp), sheet[:, :, ::-1])
    return out
