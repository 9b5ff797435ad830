"""Landmark index sets in MediaPipe face-mesh numbering (468 points)."""
import numpy as np

N_POINTS = 468
# 20 outer-lip points then 20 inner-lip points, each ring in order around the mouth.
OUTER_LIPS = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
INNER_LIPS = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191]
LIPS = OUTER_LIPS + INNER_LIPS
# Points that do not move when the mouth moves: eyes, nose bridge, forehead, temples.
RIGID = [33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1, 10, 151, 9, 8, 234, 454, 127, 356, 162, 389]
EYES = (33, 263)
NOSE_TIP = 4
NOSE_BASE = 2
CHIN = 152
# Jaw line from the left cheek (image left) under the chin to the right cheek.
JAW = [234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454]
# Cheek and nose points that bound the regenerated region from above.
UPPER_BOUND = [234, 227, 116, 117, 118, 101, 36, 203, 98, 97, 2, 326, 327, 423, 266, 330, 347, 346, 345, 447, 454]

# Positions inside LIPS of the inner-lip midpoints (upper 13, lower 14) and the mouth corners.
UPPER_MID = LIPS.index(13)
LOWER_MID = LIPS.index(14)
CORNERS = (LIPS.index(61), LIPS.index(291))
OUTER_UPPER_MID = LIPS.index(0)
OUTER_LOWER_MID = LIPS.index(17)
# Positions inside LIPS of the lower lip, outer and inner, corners excluded (each ring runs from
# the left corner along the lower lip to the right corner first).
LOWER_LIP = list(range(1, 10)) + list(range(21, 30))


def mouth_opening(lips: np.ndarray) -> np.ndarray:
    """Inner-lip opening [...]: distance between the inner-lip midpoints of [..., 40, 2] lips."""
    return np.linalg.norm(lips[..., UPPER_MID, :] - lips[..., LOWER_MID, :], axis=-1)


def mouth_width(lips: np.ndarray) -> np.ndarray:
    """Corner-to-corner width [...] of [..., 40, 2] lips."""
    return np.linalg.norm(lips[..., CORNERS[0], :] - lips[..., CORNERS[1], :], axis=-1)
