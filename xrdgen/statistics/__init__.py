"""Statistics of a collection that the generator samples from: model and file format (model.py),
KDEs (kde.py), building from a collection (build.py), figures (plots.py)."""
