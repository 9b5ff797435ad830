"""A still photo as the input of a dub: lipdub.media.still and lipdub run photo.png."""
import numpy as np
import pytest

from lipdub.errors import InputError, StillImageError
from lipdub.media.probe import probe
from lipdub.media.still import MAX_SIDE, still_video


def _photo(path, w, h, orientation=None):
    from PIL import Image

    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2] = (250, 10, 10)  # red on top, blue below: the orientation shows
    img[h // 2:] = (10, 10, 250)
    im = Image.fromarray(img)
    if orientation is None:
        im.save(path)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation  # EXIF Orientation
        im.save(path, exif=exif, quality=95)
    return path


def test_still_video_frames_fps_and_even_size(synth, tmp_path):
    v = still_video(_photo(tmp_path / "odd.png", 101, 75), 30, tmp_path)
    info = probe(v)
    assert (info.width, info.height) == (100, 74)
    assert info.fps == 25 and info.n_frames == 30


def test_still_video_upright_by_exif_and_capped(synth, tmp_path):
    # orientation 6: the camera was turned, the photo is shown rotated 90 degrees clockwise
    v = still_video(_photo(tmp_path / "phone.jpg", 4000, 3000, orientation=6), 2, tmp_path)
    info = probe(v)
    assert (info.width, info.height) == (1440, MAX_SIDE)
    from tests.conftest import decode_all

    frame = decode_all(v)[0].astype(int)
    # turned clockwise, the red top half is now on the right
    assert frame[:, -100:, 0].mean() > 200 and frame[:, :100, 2].mean() > 200


def test_unreadable_photo_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match="bad.png: not a readable image"):
        still_video(bad, 5, tmp_path)


def test_probe_tells_a_photo_apart(synth):
    with pytest.raises(StillImageError):
        probe(synth.face_png())


def test_run_dubs_a_photo(synth, tmp_path):
    from typer.testing import CliRunner

    from lipdub.cli import app

    photo = tmp_path / "face.png"
    photo.write_bytes(synth.face_png().read_bytes())
    before = photo.read_bytes()
    speech = synth.wav(seconds=1.6)
    r = CliRunner().invoke(app, ["run", str(photo), "--audio", str(speech), "--quiet"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "face.dubbed.mp4"
    info = probe(out)
    assert info.fps == 25 and (info.width, info.height) == (160, 160) and info.has_audio
    assert abs(info.n_frames - 40) <= 1
    assert photo.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work folder left behind


def test_heic_photo(synth, tmp_path):
    """iPhones save HEIC, which this ffmpeg cannot open: probe still calls it a photo and
    still_video reads it through pillow-heif."""
    pytest.importorskip("pillow_heif")
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    heic = tmp_path / "IMG_0001.HEIC"
    Image.open(synth.face_png()).save(heic)
    with pytest.raises(StillImageError):
        probe(heic)
    info = probe(still_video(heic, 3, tmp_path))
    assert (info.width, info.height) == (160, 160) and info.n_frames == 3
