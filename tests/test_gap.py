"""Domain-gap measures on constructed features with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.analysis.gap import (
    domain_gap,
    frechet_distance,
    linear_cka,
    mmd2_rbf,
    pixel_gap,
    proxy_a_distance,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(400, 8))
Y_SAME = RNG.normal(size=(400, 8))  # same distribution, different draw


def test_proxy_a_distance_identical_domains_near_zero_separable_near_two():
    assert abs(proxy_a_distance(X, Y_SAME)) < 0.3
    assert proxy_a_distance(X, X + np.r_[6.0, np.zeros(7)]) == pytest.approx(2.0)
    shifted = proxy_a_distance(X, X + np.r_[1.0, np.zeros(7)])
    assert 0.5 < shifted < 2.0


def test_mmd_zero_for_identical_sets_and_grows_with_shift():
    assert mmd2_rbf(X, X) == pytest.approx(0.0, abs=1e-12)
    small = mmd2_rbf(X, X + 0.5)
    assert mmd2_rbf(X, Y_SAME) < small < mmd2_rbf(X, X + 2.0)


def test_mmd_matches_a_direct_double_loop():
    a, b = RNG.normal(size=(5, 2)), RNG.normal(size=(4, 2)) + 1
    sigma = 0.9
    k = lambda u, v: np.exp(-np.sum((u - v) ** 2) / (2 * sigma**2))  # noqa: E731
    kaa = np.mean([[k(u, v) for v in a] for u in a])
    kbb = np.mean([[k(u, v) for v in b] for u in b])
    kab = np.mean([[k(u, v) for v in b] for u in a])
    assert mmd2_rbf(a, b, bandwidth=sigma) == pytest.approx(kaa + kbb - 2 * kab)
    off = lambda m: (m.sum() - np.trace(m)) / (len(m) * (len(m) - 1))  # noqa: E731
    kaa_m = np.array([[k(u, v) for v in a] for u in a])
    kbb_m = np.array([[k(u, v) for v in b] for u in b])
    assert mmd2_rbf(a, b, bandwidth=sigma, unbiased=True) == pytest.approx(off(kaa_m) + off(kbb_m) - 2 * kab)


def test_linear_cka_identity_invariances_and_unrelated():
    assert linear_cka(X, X) == pytest.approx(1.0)
    q, _ = np.linalg.qr(RNG.normal(size=(8, 8)))
    assert linear_cka(X, 3.0 * X @ q) == pytest.approx(1.0)  # rotation + isotropic scale
    assert linear_cka(X, RNG.normal(size=(400, 5))) < 0.1
    with pytest.raises(ValueError, match="same examples"):
        linear_cka(X, X[:10])


def test_frechet_distance_with_more_dimensions_than_points_equals_the_covariance_form():
    """Pixels have D >> N: the Gram-matrix path must give the D×D eigendecomposition's value."""
    from benchmark.analysis.gap import _sqrtm_psd

    xs, xt = RNG.normal(size=(40, 300)), 1.5 * RNG.normal(size=(55, 300)) + 0.3
    cov_s, cov_t = np.cov(xs, rowvar=False), np.cov(xt, rowvar=False)
    root = _sqrtm_psd(cov_s)
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(root @ cov_t @ root), 0, None)).sum()
    expected = ((xs.mean(0) - xt.mean(0)) ** 2).sum() + np.trace(cov_s) + np.trace(cov_t) - 2 * trace_sqrt
    assert frechet_distance(xs, xt) == pytest.approx(expected, rel=1e-7)
    assert frechet_distance(xs, xs) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_zero_for_identical_and_closed_form_for_gaussians():
    assert frechet_distance(X, X) == pytest.approx(0.0, abs=1e-9)
    # Whitened sample (covariance exactly I) vs a scaled, shifted copy (covariance diag(s²)):
    # FD = ||Δμ||² + Σ (1 − s)².
    base = RNG.normal(size=(500, 3))
    base -= base.mean(0)
    scales, shift = np.array([1.0, 2.0, 0.5]), np.array([1.0, -2.0, 0.0])
    base_white = base @ np.linalg.inv(np.linalg.cholesky(np.cov(base, rowvar=False))).T
    other = base_white @ np.diag(scales) + shift
    expected = (shift**2).sum() + ((1.0 - scales) ** 2).sum()
    assert frechet_distance(base_white, other) == pytest.approx(expected, rel=1e-6)


def test_pixel_gap_on_images():
    images = RNG.integers(0, 256, size=(120, 6, 6, 1), dtype=np.uint8)
    inverted = 255 - images
    inverted[:, :3] = 255  # a distribution shift visible in pixel space
    same = pixel_gap(images, images)
    shifted = pixel_gap(images, inverted)
    assert same["mmd2_rbf"] == pytest.approx(0.0, abs=1e-12) and same["frechet_distance"] < 1e-9
    assert shifted["proxy_a_distance"] > 1.5 and shifted["mmd2_rbf"] > 0.05
    assert set(domain_gap(X, Y_SAME)) == {"proxy_a_distance", "mmd2_rbf", "frechet_distance"}
