"""Curation: how noise and silence are found (`findings`, `confident_learning`), the curation
session over a catalog and a store (`session`), the HTML report and the export of reviews."""
