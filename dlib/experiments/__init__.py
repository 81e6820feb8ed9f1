"""Reusable experiment helpers of the chapters (each module owned by the chapter that needs it).

* :mod:`dlib.experiments.capacity` — per-factor information of a code over training (which
  factor the code learns first as AnnealedVAE's capacity grows).
"""
