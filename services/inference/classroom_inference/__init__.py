"""Classroom inference: the ingest API (HTTP in, Redis out) and the workers that run the model.

The API never imports TensorFlow: it validates, deduplicates and queues. Workers load the model
once per process and write results through `classroom_contract.store`.
"""

__version__ = "0.1.0"
