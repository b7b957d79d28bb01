"""``Picture``: the path of a PNG that easyssl wrote, which also shows itself in a notebook.

The picture functions (:func:`~easyssl.tools.visualize.plot_embeddings`,
:func:`~easyssl.tools.visualize.plot_nearest_neighbors`) used to return the path as a plain
string, so a notebook cell ending in one showed ``'embeddings.png'`` and no picture. A
:class:`Picture` *is* that string (a ``str`` subclass: ``open(p)``, ``p.endswith(".png")``,
``os.path.join(p, ...)``, ``p == "embeddings.png"`` and ``os.fspath(p)`` work as before) and
adds the hook Jupyter/IPython calls to display an object (``_repr_png_``; no HTML copy, which would
double the size of every saved notebook).
"""

from __future__ import annotations

import os
from typing import Any

from PIL import Image


class Picture(str):
    """The path of a PNG file, shown as the image in a notebook.

    Example:
        >>> picture = plot_embeddings(embeddings, labels, "map.png")
        >>> picture            # in a notebook: the map; elsewhere: Picture('map.png')
        >>> picture.path       # 'map.png', the string itself
        >>> picture.image()    # a PIL image
    """

    __slots__ = ()

    @property
    def path(self) -> str:
        """The file's path, as a plain ``str``."""
        return str.__str__(self)

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"Picture({self.path!r})"

    def image(self) -> Image.Image:
        """The picture as a PIL image (read from the file now)."""
        with Image.open(self.path) as image:
            image.load()
            return image

    def show(self) -> None:
        """Display it: in a notebook as the cell's picture, elsewhere with PIL's viewer."""
        try:
            from IPython.display import display  # noqa: PLC0415 - optional, present in notebooks

            display(self)
        except ImportError:
            self.image().show()

    def _repr_png_(self) -> bytes | None:
        """The PNG's bytes, for notebooks (None when the file is gone: the text form is shown instead)."""
        try:
            with open(self.path, "rb") as handle:
                return handle.read()
        except OSError:
            return None

    def __reduce__(self) -> tuple[Any, ...]:
        return (Picture, (self.path,))


def picture(path: str | os.PathLike) -> Picture:
    """``path`` as a :class:`Picture`."""
    return Picture(os.fspath(path))
