"""dlib: the code of the executable textbook on unsupervised disentanglement learning.

Subpackages are imported lazily by the reader (``import dlib.data``); importing ``dlib``
itself is cheap.
"""

__version__ = "0.1.0"
BOOK_PACKAGE = True  # tells this package apart from the face-recognition library also named dlib
