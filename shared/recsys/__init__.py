"""Domain package of the real-time recommender, deployed as the functions' Lambda layer.

It knows nothing of Lambda, API Gateway or Kinesis: handlers in ``functions/`` translate
their events into calls on this package, and storage is reached through the ports in
:mod:`recsys.ports`, implemented by the adapters in :mod:`recsys.adapters`.
"""
