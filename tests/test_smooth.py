import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from lipdub.smooth import gaussian_smooth


@pytest.mark.parametrize("sigma", [0.7, 1.5, 2.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_scipy_nearest(sigma, dtype):
    x = np.random.default_rng(0).normal(size=(120, 70, 2)).astype(dtype)
    got = gaussian_smooth(x, sigma)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_allclose(got, gaussian_filter1d(x.astype(np.float64), sigma, axis=0, mode="nearest"),
                               atol=1e-5 if dtype == np.float32 else 1e-12)


def test_other_axis_and_trivial_cases():
    x = np.random.default_rng(1).normal(size=(3, 50))
    np.testing.assert_allclose(gaussian_smooth(x, 1.0, axis=1), gaussian_filter1d(x, 1.0, axis=1, mode="nearest"))
    np.testing.assert_array_equal(gaussian_smooth(x, 0), x)


def test_inplace_matches_and_writes_into_the_input():
    x = np.random.default_rng(2).normal(size=(90, 20, 2)).astype(np.float32)
    want = gaussian_smooth(x, 1.2)
    got = gaussian_smooth(x, 1.2, inplace=True)
    assert got is x
    np.testing.assert_allclose(x, want, atol=1e-6)
