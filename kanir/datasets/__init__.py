"""Benchmark data shipped with kanir: the 120 AI Feynman equations (Udrescu & Tegmark 2020) with
names, formulas, variables and ranges, datasets sampled from them, and pykan's
``get_feynman_dataset``; and ``load_dataset`` for users' own CSV/.npz tables.
"""

from kanir.datasets.equations import DatasetError, FeynmanEquation, feynman
from kanir.datasets.files import load_dataset
from kanir.datasets.sampling import feynman_dataset, get_feynman_dataset

__all__ = ["DatasetError", "FeynmanEquation", "feynman", "feynman_dataset", "get_feynman_dataset",
           "load_dataset"]
