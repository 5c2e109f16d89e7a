"""Physical constants the config validates against: anode wavelengths and the accepted wavelength range."""

# Characteristic Kα1 wavelengths in Å (same values as pymatgen's WAVELENGTHS table).
ANODE_WAVELENGTHS = {
    "Cu": 1.54056,
    "Mo": 0.70930,
    "Cr": 2.28970,
    "Fe": 1.93604,
    "Co": 1.78897,
    "Ag": 0.55941,
}
# Kα2 wavelengths in Å, for the optional doublet.
ANODE_KALPHA2 = {
    "Cu": 1.54439,
    "Mo": 0.71359,
    "Cr": 2.29361,
    "Fe": 1.93998,
    "Co": 1.79285,
    "Ag": 0.56380,
}
# Wavelengths (Å) accepted anywhere (config, CLI options, measured-file headers): hard X-rays (In Kα
# 0.51, Ag Kα 0.56) to the softest laboratory anodes (Cr Kα 2.29), with room on both sides.
WAVELENGTH_RANGE = (0.05, 5.0)
