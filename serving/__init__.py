"""Encore's FastAPI service: ingest, recommend, profile. Stateless: run any number of replicas."""
