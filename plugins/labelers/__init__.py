"""Built-in labeler plugins."""
