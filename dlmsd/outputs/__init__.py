"""Outputs: where the signal table's values leave the daemon (MQTT in :mod:`.mqtt`)."""
