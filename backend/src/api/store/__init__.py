"""What the API keeps in Redis, one module per noun: the workers it can see and their
model records, the result cache, predictions, feedback and rate-limit counters.
The job stream is ``api.queue``; every key name comes from ``imgclf_contract.keys``."""
