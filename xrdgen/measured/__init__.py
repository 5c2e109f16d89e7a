"""Measured powder patterns: file readers (readers, formats), labels from RRUFF DIF files (dif), and the
preprocessing that puts a measurement onto a trained model's grid (preprocess)."""
