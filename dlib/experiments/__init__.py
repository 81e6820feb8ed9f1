"""Reusable experiment helpers of the chapters (each module owned by the chapter that needs it).

* :mod:`dlib.experiments.capacity` — per-factor information of a code over training (which
  factor the code learns first as AnnealedVAE's capacity grows).
* :mod:`dlib.experiments.tc_tracking` — FactorVAE's discriminator estimate of total correlation
  against the exact TC of the aggregate posterior over training.
* :mod:`dlib.experiments.dip` — the covariances DIP-VAE regularises (of the encoder means and
  of the aggregate posterior), measured on a probe set during training.
* :mod:`dlib.experiments.deft` — DEFT's anneal test (information thresholds) and max-m NMI
  traced during training.
"""
