"""monalia's built-in plugins, installed as monalia.plugins and declared as entry points."""
