"""xrdgen: space-group classification of powder XRD patterns trained on synthetic crystals.

The science lives here (collections, statistics, generation, simulation, augmentation, file
formats); it imports no Ray. `services/` wraps these classes in Ray actors, `models/` holds the
Keras architectures.
"""

__version__ = "0.1.0"
