"""The kinds of problem `monalia audit` finds (kept light: the project file checks its names)."""

from __future__ import annotations

IMAGE_CHECKS = (
    "dark",
    "light",
    "blurry",
    "low_information",
    "odd_aspect_ratio",
    "odd_size",
    "grayscale",
    "exact_duplicates",
    "near_duplicates",
)
DATASET_CHECKS = (
    "outlier",
    "near_duplicate",
    "non_iid",
    "class_imbalance",
    "underperforming_group",
)
KINDS = IMAGE_CHECKS + DATASET_CHECKS
# what each kind means, for tables, pages and the documentation
MEANING = {
    "dark": "too dark",
    "light": "over-exposed or washed out",
    "blurry": "blurry (an upscaled thumbnail, a shaken photograph)",
    "low_information": "almost nothing in it (a blank or placeholder scan)",
    "odd_aspect_ratio": "far wider or taller than the others (a strip, a colour chart, a ruler)",
    "odd_size": "far smaller or larger than the others",
    "grayscale": "grayscale",
    "exact_duplicates": "the same picture as another record's",
    "near_duplicates": "nearly the same picture as another record's",
    "outlier": "unlike the rest of the dataset (feature vectors)",
    "near_duplicate": "nearly the same as another image of the dataset (feature vectors)",
    "non_iid": "part of a run of similar images (the data is not shuffled or not independent)",
    "class_imbalance": "carries a class far rarer than the others",
    "underperforming_group": "in a group of similar images the model does worse on",
}
