"""monalia's spiders: they know IIIF and HTTP, never the catalog (the item pipelines do)."""
