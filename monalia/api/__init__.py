"""The plugin API: hook specifications, the plugin registry, the base classes of the four plugin
kinds, records and what plugins see of a run. It imports only the shared libraries."""
