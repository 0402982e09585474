"""Outputs: where the signal table's values leave the daemon (HTTP API, MQTT)."""
