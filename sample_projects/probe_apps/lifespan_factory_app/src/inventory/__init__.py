"""Inventory service: an app factory whose lifespan creates and instruments the engine."""
