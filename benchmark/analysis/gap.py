"""Domain-gap measures between two sets of features (numpy / scikit-learn only; no JAX).

All functions take ``x_source: float[N, D]`` and ``x_target: float[M, D]`` — features of the
source and target images from one feature extractor (e.g. the pretrained source model's
penultimate layer), or flattened pixels (:func:`pixel_gap`, the model-free version).

* :func:`proxy_a_distance` — 2(1 − 2ε), ε the held-out error of a linear domain classifier
  (Ben-David et al., "Analysis of representations for domain adaptation", NIPS 2007, §4;
  Ben-David et al., Machine Learning 2010, §4). ≈0 for indistinguishable domains, 2 for
  linearly separable ones.
* :func:`mmd2_rbf` — squared maximum mean discrepancy with a Gaussian kernel whose bandwidth is
  the median pairwise distance of the pooled sample (Gretton et al., "A kernel two-sample
  test", JMLR 2012, Eq. 5 biased / Eq. 3 unbiased; median heuristic §8).
* :func:`linear_cka` — linear centered kernel alignment (Kornblith et al., "Similarity of
  neural network representations revisited", ICML 2019, Eq. 5 / §3). CKA compares two
  representations *of the same examples*: row i of both arrays must be the same image.
  For a domain gap we pair by image: the same target images through two feature extractors
  (e.g. the source-pretrained model and a model trained from scratch on the target). It is
  not defined between two unpaired domains, so :func:`domain_gap` does not compute it.
* :func:`frechet_distance` — Fréchet distance between Gaussians fitted to both sets,
  ||μ_s − μ_t||² + Tr(Σ_s + Σ_t − 2 (Σ_s Σ_t)^{1/2}) (Heusel et al., "GANs trained by a two
  time-scale update rule...", NeurIPS 2017, Eq. 6; Dowson & Landau 1982).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

GAP_MEASURES = ("proxy_a_distance", "mmd2_rbf", "frechet_distance", "linear_cka")
"""Names used in the store's measures frame (``measure`` column) for domain-gap measures."""


def _as_2d(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{name} must be float[N, D] with N >= 2, got shape {a.shape}")
    return a


def _check_pair(x_source: np.ndarray, x_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs, xt = _as_2d(x_source, "x_source"), _as_2d(x_target, "x_target")
    if xs.shape[1] != xt.shape[1]:
        raise ValueError(f"feature dimensions differ: {xs.shape[1]} vs {xt.shape[1]}")
    return xs, xt


def _subsample(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= n else x[rng.choice(len(x), size=n, replace=False)]


def proxy_a_distance(
    x_source: np.ndarray,
    x_target: np.ndarray,
    *,
    test_fraction: float = 0.5,
    max_per_domain: int = 2000,
    seed: int = 0,
) -> float:
    """Proxy A-distance d̂_A = 2(1 − 2ε) between two feature sets.

    Both domains are subsampled to the same size (at most ``max_per_domain``) so chance error is
    0.5; a standardised L2 logistic regression learns source-vs-target on ``1 − test_fraction``
    of the points, and ε is its error on the held-out rest (stratified split from ``seed``).
    Ranges over [−2, 2]; values slightly below 0 are sampling noise around "indistinguishable".
    """
    xs, xt = _check_pair(x_source, x_target)
    rng = np.random.default_rng(seed)
    n = min(len(xs), len(xt), max_per_domain)
    xs, xt = _subsample(xs, n, rng), _subsample(xt, n, rng)
    x = np.concatenate([xs, xt])
    y = np.concatenate([np.zeros(len(xs)), np.ones(len(xt))])
    x_fit, x_eval, y_fit, y_eval = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    clf.fit(x_fit, y_fit)
    error = float(np.mean(clf.predict(x_eval) != y_eval))
    return 2.0 * (1.0 - 2.0 * error)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def median_bandwidth(x: np.ndarray, y: np.ndarray) -> float:
    """Median heuristic: the median Euclidean distance between distinct points of the pooled sample."""
    z = np.concatenate([x, y])
    return _median_distance(_sq_dists(z, z))


def _median_distance(sq_dists: np.ndarray) -> float:
    """The median of the square-rooted off-diagonal entries of a pooled squared-distance matrix
    (1.0 if it is 0: identical points)."""
    med = float(np.sqrt(np.median(sq_dists[np.triu_indices(len(sq_dists), k=1)])))
    return med if med > 0 else 1.0


def mmd2_rbf(
    x_source: np.ndarray,
    x_target: np.ndarray,
    *,
    bandwidth: float | None = None,
    unbiased: bool = False,
    max_per_domain: int = 1000,
    seed: int = 0,
) -> float:
    """Squared MMD with k(a, b) = exp(−||a − b||² / (2σ²)), σ = ``bandwidth`` or the median heuristic.

    Biased V-statistic by default (Gretton et al. 2012, Eq. 5: exactly 0 for identical sets,
    ≥ 0 always); ``unbiased=True`` drops the diagonal terms (Eq. 3; can be slightly negative).
    Each domain is subsampled to ``max_per_domain`` points (seeded) to bound the O(N²) cost.
    """
    xs, xt = _check_pair(x_source, x_target)
    rng = np.random.default_rng(seed)
    xs, xt = _subsample(xs, max_per_domain, rng), _subsample(xt, max_per_domain, rng)
    # One pass over the pooled points serves the bandwidth and all three kernel blocks (the
    # O(N²D) distances dominate on pixels: D = 12,288 at 64×64×3).
    n = len(xs)
    z = np.concatenate([xs, xt])
    dist = _sq_dists(z, z)
    sigma = float(bandwidth) if bandwidth is not None else _median_distance(dist)
    gamma = 1.0 / (2.0 * sigma * sigma)
    k_ss = np.exp(-gamma * dist[:n, :n])
    k_tt = np.exp(-gamma * dist[n:, n:])
    k_st = np.exp(-gamma * dist[:n, n:])
    if unbiased:
        n, m = len(xs), len(xt)
        term_s = (k_ss.sum() - np.trace(k_ss)) / (n * (n - 1))
        term_t = (k_tt.sum() - np.trace(k_tt)) / (m * (m - 1))
        return float(term_s + term_t - 2.0 * k_st.mean())
    return float(max(k_ss.mean() + k_tt.mean() - 2.0 * k_st.mean(), 0.0))


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA between two representations of the same N examples.

    x: float[N, D1], y: float[N, D2], row i of both = example i. After centering each column,
    CKA = ||Yᵀ X||_F² / (||Xᵀ X||_F · ||Yᵀ Y||_F) (Kornblith et al. 2019, Eq. 5 with linear
    kernels). 1 for identical (or isotropically scaled / rotated) representations, ≈0 for
    unrelated ones.
    """
    xa, ya = _as_2d(x, "x"), _as_2d(y, "y")
    if len(xa) != len(ya):
        raise ValueError(
            f"linear CKA needs the same examples in both representations (row i = example i); "
            f"got {len(xa)} and {len(ya)} rows")
    xa = xa - xa.mean(0)
    ya = ya - ya.mean(0)
    cross = np.linalg.norm(ya.T @ xa) ** 2
    norm = np.linalg.norm(xa.T @ xa) * np.linalg.norm(ya.T @ ya)
    return float(cross / norm) if norm > 0 else float("nan")


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(x_source: np.ndarray, x_target: np.ndarray) -> float:
    """Fréchet (2-Wasserstein) distance between Gaussians fitted to the two feature sets.

    Tr((Σ_s Σ_t)^{1/2}) is computed as Tr((Σ_s^{1/2} Σ_t Σ_s^{1/2})^{1/2}), a symmetric PSD
    square root (same eigenvalues, no complex round-off as with ``scipy.linalg.sqrtm``). When
    there are more dimensions than points (pixels of 64×64×3 images: D = 12,288 against ≤ 1,000
    points, where the D×D eigendecompositions took minutes), the same value comes from the
    points' Gram matrices instead (:func:`_trace_sqrt_gram`): exact, in O(N²D).
    """
    xs, xt = _check_pair(x_source, x_target)
    mu_s, mu_t = xs.mean(0), xt.mean(0)
    if xs.shape[1] > min(len(xs), len(xt)):
        a_s, a_t = xs - mu_s, xt - mu_t
        c_s, c_t = max(len(xs) - 1, 1), max(len(xt) - 1, 1)
        trace_s, trace_t = float((a_s * a_s).sum() / c_s), float((a_t * a_t).sum() / c_t)
        trace_sqrt = _trace_sqrt_gram(a_s, a_t, c_s, c_t)
    else:
        cov_s = np.atleast_2d(np.cov(xs, rowvar=False))
        cov_t = np.atleast_2d(np.cov(xt, rowvar=False))
        root_s = _sqrtm_psd(cov_s)
        cross = np.linalg.eigvalsh(root_s @ cov_t @ root_s)
        trace_sqrt = float(np.sqrt(np.clip(cross, 0, None)).sum())
        trace_s, trace_t = float(np.trace(cov_s)), float(np.trace(cov_t))
    value = float(((mu_s - mu_t) ** 2).sum() + trace_s + trace_t - 2.0 * trace_sqrt)
    return max(value, 0.0)


def _trace_sqrt_gram(a_s: np.ndarray, a_t: np.ndarray, c_s: int, c_t: int) -> float:
    """Tr((Σ_s Σ_t)^{1/2}) from centred points ``a_s`` [n, D], ``a_t`` [m, D] (Σ = AᵀA / c).

    Σ_s Σ_t = A_sᵀ A_s A_tᵀ A_t / (c_s c_t) has the non-zero eigenvalues of
    (A_s A_tᵀ)(A_s A_tᵀ)ᵀ / (c_s c_t), so the trace of its square root is the sum of the
    singular values of the n×m matrix A_s A_tᵀ over √(c_s c_t).
    """
    singular = np.linalg.svd(a_s @ a_t.T, compute_uv=False)
    return float(singular.sum() / np.sqrt(c_s * c_t))


def domain_gap(x_source: np.ndarray, x_target: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """The unpaired gap measures between two feature sets: ``{measure name: value}``."""
    return {
        "proxy_a_distance": proxy_a_distance(x_source, x_target, seed=seed),
        "mmd2_rbf": mmd2_rbf(x_source, x_target, seed=seed),
        "frechet_distance": frechet_distance(x_source, x_target),
    }


def pixel_gap(images_source: np.ndarray, images_target: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """Model-free gap: :func:`domain_gap` on flattened pixels scaled to [0, 1].

    images_*: uint8[N, H, W, C] (or float in [0, 1]) of the same input spec.
    """
    def flat(images: np.ndarray) -> np.ndarray:
        a = np.asarray(images)
        scale = 255.0 if a.dtype == np.uint8 else 1.0
        return a.reshape(len(a), -1).astype(np.float64) / scale

    return domain_gap(flat(images_source), flat(images_target), seed=seed)
