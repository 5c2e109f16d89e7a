"""Evaluation of a trained model: metrics.py (top-k, recall, crystal-system confusion), plots.py, report.py."""
