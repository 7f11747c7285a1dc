"""RDF and SPARQL: terms and N-Triples/Turtle writing (`terms`), the enrichment graph of scores
(`scores`), SKOS thesauri (`thesaurus`), SPARQL queries with bound values (`sparql`) and SPARQL
without a server (`local_store`)."""
