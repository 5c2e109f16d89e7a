"""Statistics of a collection that the generator samples from: model and file format (model.py),
KDEs (kde.py), building from a collection and the class list rule (build.py), a database's
space-group and formula metadata (metadata.py), the readable overview (summary.py), figures
(plots.py)."""
