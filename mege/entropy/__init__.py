"""Entropy estimators. Each family is one file; all follow the contract in :mod:`mege.entropy.base`.

* :mod:`~mege.entropy.none` — no entropy term;
* :mod:`~mege.entropy.mi` — MI bounds on (x, z): Jensen–Shannon, MINE, NWJ, InfoNCE, SMILE;
* :mod:`~mege.entropy.kde` — Gaussian KDE values (resubstitution / leave-one-out), bandwidth rules, KDE score;
* :mod:`~mege.entropy.knn` — Kozachenko–Leonenko k-NN value and its bias-cancelling weighted form;
* :mod:`~mege.entropy.flow` — cross-entropy under an online-fitted pyro coupling flow (upper bound);
* :mod:`~mege.entropy.zuko_flow` — the same with zuko's autoregressive flows (MAF, NSF);
* :mod:`~mege.entropy.stein` — Stein and spectral Stein score estimators;
* :mod:`~mege.entropy.posterior` — posterior scores of a noisy generator (HMC, importance sampling).

:mod:`~mege.entropy.catalogue` lists the registered ones (``configs/entropy/*.yaml``).
"""

from mege.entropy.base import EntropyEstimator, EntropyResult, ScoreEstimator

__all__ = ["EntropyEstimator", "EntropyResult", "ScoreEstimator"]
