"""EfficientNet-Lite0 inference worker; what it shares with the API is ``imgclf_contract``."""
