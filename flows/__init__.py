"""Encore's Bytewax dataflow and its connectors: Kafka in, Redis out, dead letters."""
