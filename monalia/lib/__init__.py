"""Shared libraries: RDF, SPARQL, HTTP, thesauri, IIIF, image checks and decoding, backbones,
metrics, curation queries, progress. Used by the core and by plugins alike."""
