"""Record formats, for source plugins: EDM, LIDO and Dublin Core XML, IIIF Presentation
manifests, OAI-PMH, safe XML parsing, field mapping helpers and record files on disk."""
