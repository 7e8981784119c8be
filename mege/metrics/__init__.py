"""Metrics. A metric is a callable ``metric(generate, data) -> dict`` of floats plus a "protocol" card.

``generate(n)`` returns n generated samples (no grad, any device). Toy mode counting lives in
:mod:`mege.metrics.toy`.
"""
