"""Datasets for ULSAD: loaders for the five benchmarks and your own images, downloads, and a synthetic benchmark.

>>> from ulsad import data
>>> data.synth.generate("data/synthetic", categories=["pegboard"])   # seconds, no download
>>> test = data.load("synthetic", "data/synthetic", "pegboard", "test")
>>> item = test[0]   # {"image": 3xSxS, "mask": SxS, "label": 0/1, "type": str, "path": str}
"""
from . import images, synth
from .datasets import DATASETS, SPLITS, AnomalyDataset, Sample, categories, load, stack_images
from .download import LICENCE, SOURCES, download, is_present
from .errors import DataError
from .images import MAX_PIXELS, read_image, read_mask
from .synth import SYNTHETIC_CATEGORIES

__all__ = ["DATASETS", "SPLITS", "SYNTHETIC_CATEGORIES", "LICENCE", "MAX_PIXELS", "SOURCES", "AnomalyDataset", "stack_images",
           "DataError", "Sample", "categories", "download", "images", "is_present", "load", "read_image",
           "read_mask", "synth"]
