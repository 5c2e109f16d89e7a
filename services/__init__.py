"""Ray actors and job entrypoints: thin shells around plain classes from `xrdgen/`."""
