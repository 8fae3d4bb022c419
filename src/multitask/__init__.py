"""multitask: multi-task learning, classical and deep, in one library.

The two halves are independent: :mod:`multitask.linear` (numpy / scipy /
scikit-learn) never imports torch, and :mod:`multitask.nn` (PyTorch) never
imports numba. Importing :mod:`multitask` itself is cheap and imports neither.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
