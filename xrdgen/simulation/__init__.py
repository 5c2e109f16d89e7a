"""Powder X-ray diffraction patterns, compiled with Numba and proven against pymatgen's XRDCalculator.

- `peaks.py`: merged peak list of a crystal (2θ, intensity), optionally textured and thermally damped;
- `profiles.py`: peak widths (Scherrer, Caglioti, microstrain, asymmetry) and the Kα2 twins;
- `render.py`: every peak's profile summed onto the 2θ grid;
- `simulator.py`: `PatternSimulator(simulation, grid)`, crystal in, pattern on the grid out;
- `imperfections.py`: what a measured pattern has on top (texture, shifts, strain, broadening,
  background, noise, impurity), each switchable under `augmentation:`; `background.py` its
  Gaussian-process background.
"""
