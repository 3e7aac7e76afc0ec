"""The catalog: standard change models and integration templates, read from data files."""
