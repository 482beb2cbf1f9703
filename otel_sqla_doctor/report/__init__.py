"""One small emitter per output format."""
