"""The ml: vocabulary, SHACL shapes, mapping files and SPARQL queries, as package data."""
