"""Evaluation of a trained model: metrics.py (top-k, recall, crystal systems), calibration.py (temperature scaling, ECE), plots.py, report.py."""
