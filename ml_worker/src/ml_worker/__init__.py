"""EfficientNet-Lite0 inference worker; ``ml_worker.contract`` is what the API shares with it."""
