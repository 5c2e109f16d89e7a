"""Keras 3 architectures as data: each network is a spec handed to one builder."""
