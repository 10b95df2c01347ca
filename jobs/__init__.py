"""The jobs: their declarations and functions, the wire contract (argument, data and result
models, JSON Schemas) and the Python producer client. Redis names live in :mod:`gcal.keys`."""
