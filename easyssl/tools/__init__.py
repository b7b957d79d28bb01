"""What people do with embeddings: search, selection, evaluation, export and pictures.

* :mod:`easyssl.tools.search`: :func:`nearest_neighbors` (exact, memory-bounded);
* :mod:`easyssl.tools.duplicates`: :func:`find_duplicates`, :func:`find_duplicate_images`, which confirms
  pairs with :mod:`easyssl.tools.pixels` (``pixel_agreement``: do two images match pixel for pixel?);
* :mod:`easyssl.tools.selection`: :func:`select_diverse`, :func:`select_for_labeling`, :func:`uncertainty_scores`;
* :mod:`easyssl.tools.evaluation`: :func:`knn_predict`, :func:`knn_accuracy`;
* :mod:`easyssl.tools.export`: :func:`export_backbone`, :func:`load_backbone`, :func:`torchvision_model`;
* :mod:`easyssl.tools.visualize` (drawing), :mod:`easyssl.tools.manifold` (UMAP / t-SNE / PCA to 2-D) and
  :mod:`easyssl.tools.projection` (colours, class names, layout, framing, thumbnail grid):
  :func:`plot_embeddings`, :func:`plot_nearest_neighbors`, :func:`pca_2d`;
* :mod:`easyssl.tools.arrays`: the array checks and conversions the tools share.

Every name here is also a top-level name of :mod:`easyssl` (``easyssl.find_duplicates``...).
"""

from easyssl.tools.evaluation import knn_accuracy, knn_predict
from easyssl.tools.export import backbone_from_checkpoint, export_backbone, load_backbone, torchvision_model
from easyssl.tools.projection import pca_2d
from easyssl.tools.duplicates import find_duplicate_images, find_duplicates
from easyssl.tools.search import nearest_neighbors
from easyssl.tools.selection import select_diverse, select_for_labeling, uncertainty_scores
from easyssl.tools.visualize import plot_embeddings, plot_nearest_neighbors

__all__ = [
    "backbone_from_checkpoint",
    "export_backbone",
    "find_duplicate_images",
    "find_duplicates",
    "knn_accuracy",
    "knn_predict",
    "load_backbone",
    "nearest_neighbors",
    "pca_2d",
    "plot_embeddings",
    "plot_nearest_neighbors",
    "select_diverse",
    "select_for_labeling",
    "torchvision_model",
    "uncertainty_scores",
]
