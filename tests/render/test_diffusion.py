import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from lipdub.errors import InputError, WeightsNotFoundError  # noqa: E402
from lipdub.motion import neural as motion_neural  # noqa: E402
from lipdub.render import neural  # noqa: E402
from lipdub.render.diffusion import ModulatedConv2d, MouthRenderer, RendererConfig  # noqa: E402
from lipdub.train.synthetic import synthetic_pack  # noqa: E402

S = 32


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tiny_cfg(**kw):
    return RendererConfig(image_size=S, vae_channels=(8, 16), channels=(16, 32), attn_levels=(0, 1),
                          n_refs=2, style_dim=16, heads=2, groups=4, **kw)


def tiny(seed=0):
    torch.manual_seed(seed)
    m = MouthRenderer(tiny_cfg()).eval()
    with torch.no_grad():  # untrained conv_out is small: make effects visible
        m.unet.conv_out.weight.mul_(10)
    return m


def batch(B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(B, 3, S, S, generator=g) * 2 - 1
    mask = torch.zeros(B, 1, S, S)
    mask[:, :, S // 2:] = 1
    refs = torch.rand(B * 2, 3, S, S, generator=g) * 2 - 1
    return img, mask, torch.randn(B, 80, generator=g), refs


def run(m, img, mask, motion, refs, steps=2, sampler="ddim", seed=0):
    with torch.no_grad():
        cond = m.condition(img, mask)
        z = m.encode(refs)
        ref_latents = z.view(img.shape[0], 2, *z.shape[1:])
        return neural.sample(m, cond, motion, ref_latents, steps, sampler, seed)


def test_modulated_conv_shapes_and_demodulation():
    conv = ModulatedConv2d(4, 6, 3, style_dim=5)
    x, style = torch.randn(2, 4, 8, 8), torch.randn(2, 5)
    assert conv(x, style).shape == (2, 6, 8, 8)
    assert not torch.allclose(conv(x, style)[0], conv(x, -style)[0])  # style changes the output
    with torch.no_grad():
        conv.affine.weight.zero_()
        a = conv(x, style)
        conv.affine.bias.fill_(3.0)  # uniform scaling of the weights is undone by demodulation
        assert torch.allclose(a, conv(x, style), atol=1e-5)


def test_unet_output_shape():
    m = tiny()
    img, mask, motion, refs = batch()
    cond = m.condition(img, mask)
    h = S // 2
    assert cond.shape == (2, 5, h, h)
    out = m(torch.randn(2, 4, h, h), cond, torch.tensor([3, 700]), motion, torch.randn(2, 2, 4, h, h))
    assert out.shape == (2, 4, h, h)
    assert m.decode(torch.randn(2, 4, h, h)).shape == (2, 3, S, S)


def test_renderer_cannot_see_the_masked_lower_face():
    m = tiny()
    img, mask, motion, refs = batch()
    other = img.clone()
    other[:, :, S // 2:] = torch.rand_like(other[:, :, S // 2:])  # change only masked pixels
    assert torch.equal(run(m, img, mask, motion, refs), run(m, other, mask, motion, refs))
    visible = img.clone()
    visible[:, :, :4] = 1.0  # a change above the mask is seen
    assert not torch.allclose(run(m, img, mask, motion, refs), run(m, visible, mask, motion, refs))


def test_reference_and_motion_change_the_output():
    m = tiny()
    img, mask, motion, refs = batch()
    base = run(m, img, mask, motion, refs)
    assert not torch.allclose(base, run(m, img, mask, motion, torch.flip(refs, dims=[2])), atol=1e-4)
    assert not torch.allclose(base, run(m, img, mask, motion + 1.0, refs), atol=1e-4)


@pytest.mark.parametrize("sampler", neural.SAMPLERS)
def test_sampling_is_deterministic_under_a_seed(sampler):
    m = tiny()
    b = batch()
    assert torch.equal(run(m, *b, sampler=sampler, seed=5), run(m, *b, sampler=sampler, seed=5))
    assert not torch.allclose(run(m, *b, sampler=sampler, seed=5), run(m, *b, sampler=sampler, seed=6))


def test_bad_sampler_and_steps():
    m = tiny()
    with pytest.raises(InputError):
        run(m, *batch(), sampler="euler")
    with pytest.raises(InputError):
        run(m, *batch(), steps=0)


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPDUB_WEIGHTS", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(motion_neural, "REPO_WEIGHTS", tmp_path / "repo")
    return tmp_path


def test_save_load_round_trip(no_weights):
    m = tiny()
    neural.save_model(m, no_weights / "env" / "renderer.safetensors")
    assert neural.available()
    loaded = neural.load_model()
    assert loaded.cfg == m.cfg
    b = batch()
    assert torch.equal(run(m, *b), run(loaded, *b))


def test_missing_weights_name_every_path(no_weights):
    assert not neural.available()
    with pytest.raises(WeightsNotFoundError) as e:
        neural.load_model()
    assert len(e.value.searched) == 3 and "lipdub train renderer" in str(e.value)
    for p in e.value.searched:
        assert str(p) in str(e.value)


def test_render_crop_keeps_the_upper_face():
    pack = synthetic_pack(D=12, size=S)
    r = neural.NeuralRenderer(pack, track=None, motion=None, model=tiny(), steps=2, sampler="dpm")
    crop, pts = pack.crops[0], pack.crop_points[0]
    out = r.render_crop(crop, pts, pack.lips[5])
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert np.array_equal(out, r.render_crop(crop, pts, pack.lips[5]))
    mask = neural.lower_face_mask(pts, S)
    assert 0.4 < mask.mean() < 0.8 and mask[-1].all() and not mask[0].any()


@pytest.mark.gpu
def test_full_size_on_gpu():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    cfg = RendererConfig(image_size=256, vae_channels=(64, 128, 256, 256), channels=(128, 256, 512),
                         attn_levels=(1, 2))
    m = MouthRenderer(cfg).cuda().eval()
    img = torch.rand(1, 3, 256, 256, device="cuda") * 2 - 1
    mask = torch.zeros(1, 1, 256, 256, device="cuda")
    mask[..., 128:] = 1
    with torch.no_grad():
        cond = m.condition(img, mask)
        refs = m.encode(img.repeat(4, 1, 1, 1))[None]
        z = neural.sample(m, cond, torch.zeros(1, 80, device="cuda"), refs, steps=4, sampler="dpm")
        assert m.decode(z).shape == (1, 3, 256, 256)


def test_render_frame_changes_only_the_lower_face():
    from lipdub.face import geometry as G
    from lipdub.style.pack import crop_space
    from lipdub.types import FaceTrack, LipMotion

    pack = synthetic_pack(D=12, size=S)
    shift = np.array([[1.0, 0, -20], [0, 1.0, -10]])  # frame -> crop: the face sits at (20, 10)
    to_canon = G.compose(G.invert(crop_space(pack).canon_to_crop), shift).astype(np.float32)
    frame = np.full((64, 80, 3), 90, np.uint8)
    frame[10:10 + S, 20:20 + S] = pack.crops[0]
    pts = pack.crop_points[:1] + np.array([20, 10], np.float32)
    track = FaceTrack(points=np.repeat(pts, 2, 0), found=np.array([True, False]),
                      to_canon=np.repeat(to_canon[None], 2, 0), template=pack.template)
    motion = LipMotion(pack.lips[:2], engine="neural")
    r = neural.NeuralRenderer(pack, track, motion, np.arange(2), model=tiny(), steps=2)
    out = r.render(frame, 0, 0)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert not np.array_equal(out, frame)
    import cv2

    from lipdub.face.landmarks import JAW
    from lipdub.render import composite

    region = composite.lower_face(pack.crop_points[0], pack.crop_points[0][JAW], G.invert(shift), S, frame.shape)
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(region.poly).astype(np.int32)], 1)
    mask = mask.astype(bool)
    assert np.array_equal(out[~mask], frame[~mask])  # only the shared compositor's lower face may change
    assert mask[: int(pack.crop_points[0][4, 1]) + 10].sum() == 0  # nothing above the nose tip
    assert r.render(frame, 1, 1) is frame  # no face: untouched
