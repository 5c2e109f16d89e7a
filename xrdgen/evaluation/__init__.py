"""Evaluation of a trained model: metrics.py (top-k, recall, crystal systems), calibration.py (temperature scaling, ECE), calibrate.py (fitting a run's temperature), plots.py, report.py."""
