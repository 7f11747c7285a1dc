"""monalia's built-in plugins, installed as monalia.builtins and declared as entry points."""
