"""Similarity: image vectors (`embedder`), their index (`vectors`), and near duplicates and
"more like this" over the catalog's images (`near_duplicates`)."""
