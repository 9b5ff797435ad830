"""The landmarker finds a small face in a 4K frame, tracks faces in crops around them, picks up a
face that appears later and gives the whole-frame mesh's landmarks where the crop is the frame."""
import cv2
import numpy as np
import pytest

from lipdub.face import detect
from lipdub.face.landmarks import EYES
from lipdub.media.frame import YuvFrame


@pytest.fixture(scope="module")
def face(synth):
    return cv2.cvtColor(cv2.imread(str(synth.face_png())), cv2.COLOR_BGR2RGB)


def _canvas(h, w, faces):
    """A grey h x w frame with the face pictures pasted at their (x, y, size)."""
    out = np.full((h, w, 3), 90, np.uint8)
    for img, (x, y, s) in faces:
        out[y:y + s, x:x + s] = cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA)
    return out


def _inside(points, x, y, s):
    return bool(((points >= [x, y]) & (points <= [x + s, y + s])).all())


def test_small_face_in_a_4k_frame(face):
    """A face about 185 px wide (the picture is 640 px): 5 % of the frame's width, which the
    detector that suits close-ups misses; the full-range one finds it."""
    frame = _canvas(2160, 3840, [(face, (2400, 600, 640))])
    lm = detect.Landmarker()
    try:
        got = [lm(YuvFrame(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420))) for _ in range(3)]
    finally:
        lm.close()
    for faces in got:
        assert len(faces) == 1 and _inside(faces[0], 2400, 600, 640)
    assert np.abs(got[2] - got[1]).mean() < 1.5  # the same picture: the same face (185 px wide)


def test_a_face_that_appears_later_is_found(face):
    one = _canvas(480, 960, [(face, (60, 100, 200))])
    two = _canvas(480, 960, [(face, (60, 100, 200)), (face, (640, 150, 220))])
    lm = detect.Landmarker()
    try:
        counts = [len(lm(one)) for _ in range(3)] + [len(lm(two)) for _ in range(detect.SCAN_EVERY + 1)]
        last = lm(two)
    finally:
        lm.close()
    assert counts[:3] == [1, 1, 1] and counts[-1] == 2
    assert sorted(_inside(f, 640, 150, 220) for f in last) == [False, True]


def test_whole_frame_crop_matches_the_plain_mesh(face):
    """A frame no larger than the crop is what the mesh sees, as it did before tracking in crops."""
    frame = _canvas(160, 160, [(face, (0, 0, 160))])
    mesh_module, _ = detect._import_solutions()
    mesh = mesh_module.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False)
    lm = detect.Landmarker()
    try:
        for _ in range(3):
            res = mesh.process(frame)
            plain = np.array([(p.x, p.y) for p in res.multi_face_landmarks[0].landmark[:468]]) * 160
            ours = lm(frame)
        iod = np.linalg.norm(plain[EYES[0]] - plain[EYES[1]])
        assert len(ours) == 1 and np.abs(ours[0] - plain).mean() < 0.01 * iod
    finally:
        mesh.close()
        lm.close()
