"""The agreement between the API and the workers, importable without TensorFlow.

Job messages, Redis key names, the preprocessing contract, limits, error codes
and configuration are defined here once; both services import them.
"""
