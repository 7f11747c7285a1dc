"""The catalog: one database of records, images, datasets, models, predictions and runs.

Import what you need from its modules: `database` (the SQLAlchemy `Catalog`), `models` (its
tables), `reader` (a read-only reader that needs no SQLAlchemy, for the commands that answer at
once), `lookups` (models and records found by name), `run_tracking`, `bulk`, `reviews`.
This package itself imports nothing, so the light readers stay light.
"""
