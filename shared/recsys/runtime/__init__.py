"""Glue between AWS Lambda and the domain: settings, wiring of adapters, event translation.

Handlers in ``functions/`` call into this package; the domain modules never import it.
"""
