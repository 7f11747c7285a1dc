"""A small thesaurus in the shape of Garnier's (T523) and an Iconclass-like one matched to it.

It holds what real thesauri do: hierarchies written with skos:narrower in one place and
skos:broader in another, labels with mixed language tags (``fr``, ``fr-FR``, none), a label that
starts with a newline, alt and hidden labels, a related link, a homonym, and exactMatch links
from another vocabulary.
"""

from __future__ import annotations

T = "http://data.culture.fr/thesaurus/resource/ark:/67717/"
IC = "http://iconclass.org/"

ANIMAL = T + "T523-1"
HORSE = T + "T523-2037"
FOAL = T + "T523-9001"
DOG = T + "T523-1950"
FANTASTIC = T + "T523-9002"
UNICORN = T + "T523-9003"
TREE = T + "T523-1220"
OAK = T + "T523-9004"
HUMAN = T + "T523-9005"
MILITARY = T + "T523-9006"
SOLDIER = T + "T523-9007"
RIDER = T + "T523-6209"
CROSS_SIGN = T + "T523-9008"
CROSS_OBJECT = T + "T523-8619"
IC_HORSE = IC + "25F23%28HORSE%29"
IC_FOAL = IC + "25F23%28HORSE%29%28%2B2%29"

THESAURUS_TTL = f"""
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix t: <{T}> .

<{T}T523> a skos:ConceptScheme .

<{ANIMAL}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "animal"@fr ;
    skos:narrower <{HORSE}>, <{DOG}>, <{FANTASTIC}> .
<{HORSE}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "cheval"@fr ;
    skos:prefLabel "horse"@en ; skos:altLabel "équidé"@fr-FR ; skos:hiddenLabel "chevaux"@fr .
<{FOAL}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "\\n  poulain"@fr ;
    skos:broader <{HORSE}> .
<{DOG}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "chien"@fr .
<{FANTASTIC}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "animal fantastique"@fr ;
    skos:narrower <{UNICORN}> .
<{UNICORN}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "licorne" .
<{TREE}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "arbre"@fr ;
    skos:narrower <{OAK}> .
<{OAK}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "chêne"@fr-FR .
<{HUMAN}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "être humain"@fr .
<{MILITARY}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "hiérarchie militaire"@fr ;
    skos:narrower <{SOLDIER}> .
<{SOLDIER}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "soldat"@fr .
<{RIDER}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "cavalier"@fr ;
    skos:related <{HORSE}> .
<{CROSS_SIGN}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "croix"@fr .
<{CROSS_OBJECT}> a skos:Concept ; skos:inScheme <{T}T523> ; skos:prefLabel "croix"@fr .
"""

ICONCLASS_NT = f"""
<{IC_HORSE}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://www.w3.org/2004/02/skos/core#Concept> .
<{IC_HORSE}> <http://www.w3.org/2004/02/skos/core#prefLabel> "horse"@en .
<{IC_HORSE}> <http://www.w3.org/2004/02/skos/core#notation> "25F23(HORSE)" .
<{IC_HORSE}> <http://www.w3.org/2004/02/skos/core#exactMatch> <{HORSE}> .
<{IC_HORSE}> <http://www.w3.org/2004/02/skos/core#narrower> <{IC_FOAL}> .
<{IC_FOAL}> <http://www.w3.org/2004/02/skos/core#prefLabel> "foal"@en .
"""

# What MonaLIA's classes need here, written the way a curator writes a mapping file.
LINKS_CSV = """# extra links
subject,property,object
être humain,related,hiérarchie militaire
licorne,skos:exactMatch,http://example.org/unknown-vocabulary/unicorn
nobody knows this,related,arbre
"""
