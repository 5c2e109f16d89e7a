"""Measured powder patterns: file readers (readers, formats; CIF text through gemmi in cif), labels
from RRUFF DIF files (dif) or from the space group a structure CIF states (cif_label), and the
preprocessing that puts a measurement onto a trained model's grid (preprocess)."""
