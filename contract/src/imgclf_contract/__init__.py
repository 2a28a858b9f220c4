"""The agreement between the API and the workers (and the errors clients see), without TensorFlow.

Job messages (``jobs``), Redis key names (``keys``), the preprocessing contract
(``preprocess``), error codes (``errors``), which workers count as live
(``liveness``), what a worker publishes about its model (``model_record``), the
log-line format (``logs``), the Redis connection (``redis_client``) and the
settings both services share (``settings``) are defined here once; both services
import them.
"""
