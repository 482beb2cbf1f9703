"""Shop service: its tracing setup takes the app (`setup_telemetry(app)`), called by the entry point."""
