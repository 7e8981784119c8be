"""Entropy estimators. Each family is one file; all follow the contract in :mod:`mege.entropy.base`."""

from mege.entropy.base import EntropyEstimator, EntropyResult, ScoreEstimator

__all__ = ["EntropyEstimator", "EntropyResult", "ScoreEstimator"]
