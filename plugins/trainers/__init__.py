"""Built-in trainer plugins."""
