"""2-D maps of embeddings: UMAP, t-SNE or PCA, and which of them ``"auto"`` picks.

PCA is always there (numpy only) but shows the two directions of largest variance, which for
whitened embeddings (every direction has variance 1) are close to arbitrary: clusters overlap
on the page. UMAP (``pip install umap-learn``) and t-SNE (``pip install scikit-learn``) keep
each image's neighbours next to it, which is what a reader of the map looks for; both are
optional extras (``pip install "easyssl[maps]"``), never imported unless asked for.
:mod:`easyssl.tools.projection` turns the 2-D points into pixels.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import torch

from easyssl.tools.arrays import ArrayLike, as_matrix

__all__ = ["MAP_METHODS", "MAP_NAMES", "pca_2d", "project_2d", "resolve_map_method"]

#: The ``method`` values :func:`project_2d` accepts.
MAP_METHODS = ("auto", "umap", "tsne", "pca")
#: How each method is written in a picture's caption.
MAP_NAMES = {"umap": "UMAP", "tsne": "t-SNE", "pca": "PCA"}
_PACKAGES = {"umap": ("umap", "umap-learn"), "tsne": ("sklearn", "scikit-learn")}
#: Below this many points UMAP and t-SNE have too few neighbours to work with; PCA is used.
MIN_POINTS_NONLINEAR = 8
#: ``"auto"`` uses a method only up to this many points (beyond, it takes minutes to hours); name it to go further.
AUTO_MAX_POINTS = {"umap": 100_000, "tsne": 10_000}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve_map_method(method: str = "auto", num_points: int = 0) -> str:
    """The method ``method`` stands for: ``"auto"`` is ``"umap"`` when umap-learn is installed,
    else ``"tsne"`` when scikit-learn is, else ``"pca"`` (each only up to
    :data:`AUTO_MAX_POINTS` points: 100,000 for UMAP, 10,000 for t-SNE).

    Raises:
        ValueError: not one of :data:`MAP_METHODS`.
        ImportError: ``"umap"`` or ``"tsne"`` named but its package is not installed (says what to install).
    """
    if method not in MAP_METHODS:
        raise ValueError(f"method must be one of {', '.join(repr(m) for m in MAP_METHODS)}, got {method!r}")
    if method == "auto":
        fits = [m for m in ("umap", "tsne") if num_points <= AUTO_MAX_POINTS[m]]
        return next((m for m in fits if _installed(_PACKAGES[m][0])), "pca")
    if method in _PACKAGES and not _installed(_PACKAGES[method][0]):
        module, package = _PACKAGES[method]
        raise ImportError(
            f"method={method!r} needs the {package} package: pip install {package}  (or: pip install \"easyssl[maps]\"); "
            "method='pca' needs nothing"
        )
    return method


def pca_2d(embeddings: ArrayLike) -> np.ndarray:
    """Project embeddings onto their first two principal components.

    The data is centred and the principal axes are taken from the SVD of
    the (D x D) covariance, accumulated in float64 over row chunks (so no
    float64 copy of a large array is made). Each axis' sign is fixed so its
    largest-magnitude loading is positive, making the result deterministic.
    Missing components (``D == 1`` or rank < 2) are filled with zeros.

    Args:
        embeddings: Array of shape ``(N, D)`` (numpy array or torch tensor).

    Returns:
        float64 array of shape ``(N, 2)``.

    Raises:
        ValueError: Not a non-empty 2-D array, or non-finite values.

    Example:
        >>> x = np.array([[0, 5, 0], [2, 5, 0], [4, 5, 0]], dtype=np.float32)
        >>> pca_2d(x)[:, 0].round(2).tolist()  # second column is all zero here
        [-2.0, 0.0, 2.0]
    """
    x = as_matrix(embeddings, "embeddings")
    if isinstance(x, torch.Tensor):
        x = x.cpu().numpy()
    num, dim = x.shape
    step = max(1, (8 * 1024 * 1024) // dim)
    total = np.zeros(dim, dtype=np.float64)
    for s in range(0, num, step):
        chunk = np.asarray(x[s : s + step], dtype=np.float64)
        if not np.isfinite(chunk).all():
            raise ValueError("embeddings contains NaN or infinite values")
        total += chunk.sum(axis=0)
    mean = total / num
    cov = np.zeros((dim, dim), dtype=np.float64)
    for s in range(0, num, step):
        chunk = np.asarray(x[s : s + step], dtype=np.float64) - mean
        cov += chunk.T @ chunk
    u, sv, _ = np.linalg.svd(cov, hermitian=True)
    components = np.zeros((dim, 2), dtype=np.float64)
    for j in range(min(2, dim)):
        if sv[j] <= 1e-12 * max(float(sv[0]), 1e-300):
            continue  # no variance along this axis
        axis = u[:, j]
        components[:, j] = axis if axis[np.argmax(np.abs(axis))] > 0 else -axis
    out = np.empty((num, 2), dtype=np.float64)
    for s in range(0, num, step):
        out[s : s + step] = (np.asarray(x[s : s + step], dtype=np.float64) - mean) @ components
    return out


def _reduced(x: np.ndarray, dims: int = 50) -> np.ndarray:
    """Rows L2-normalised (cosine geometry, as the searches use), then at most ``dims`` principal components.

    UMAP's and t-SNE's run time grows with the dimension; 50 components keep nearly all of
    the neighbourhood structure (the usual t-SNE preprocessing).
    """
    x = x.astype(np.float32) / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12).astype(np.float32)
    x = x - x.mean(axis=0)
    if x.shape[1] <= dims:
        return x
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:dims].T


def project_2d(embeddings: ArrayLike, method: str = "auto", *, random_state: int = 0) -> tuple[np.ndarray, str]:
    """2-D positions of the embeddings and the method that made them.

    ``"umap"`` and ``"tsne"`` work on the cosine geometry (rows normalised, as
    :func:`~easyssl.tools.search.nearest_neighbors` compares them) and are deterministic for
    a given ``random_state``; ``"pca"`` is :func:`pca_2d`. ``"auto"`` picks UMAP, else t-SNE,
    else PCA, by what is installed and how many points there are (:func:`resolve_map_method`). With fewer than
    :data:`MIN_POINTS_NONLINEAR` points UMAP and t-SNE fall back to PCA.

    Returns:
        ``(xy, used)``: float64 array ``(N, 2)`` and ``"umap"``, ``"tsne"`` or ``"pca"``.

    Raises:
        ValueError: unknown method, or bad embeddings (see :func:`pca_2d`).
        ImportError: an explicitly named method whose package is missing.

    Example:
        >>> xy, used = project_2d(np.eye(3), method="pca")
        >>> xy.shape, used
        ((3, 2), 'pca')
    """
    x = as_matrix(embeddings, "embeddings")
    used = resolve_map_method(method, x.shape[0])
    num = x.shape[0]
    if used == "pca" or num < MIN_POINTS_NONLINEAR:
        return pca_2d(x), "pca"  # chunked: no full copy of a large array
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("embeddings contains NaN or infinite values")
    data = _reduced(x).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap: "n_jobs overridden by random_state"; numba/sklearn chatter
        if used == "umap":
            import umap

            reducer = umap.UMAP(n_components=2, n_neighbors=min(15, num - 1), min_dist=0.1, random_state=random_state)
            xy = reducer.fit_transform(data)
        else:
            from sklearn.manifold import TSNE

            perplexity = float(min(30.0, (num - 1) / 3.0))
            xy = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                      random_state=random_state).fit_transform(data)
    return np.asarray(xy, dtype=np.float64), used
