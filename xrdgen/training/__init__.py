"""Training: rundir.py (run-directory files, input spec, loading the trained model), datasets.py (labelled
sets: simulated, randomized, measured), stream.py (the synthetic pattern stream), trainer.py (Trainer),
calibrate.py (the temperature of calibrated probabilities), plots.py (accuracy curves)."""
