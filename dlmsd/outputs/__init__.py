"""Outputs: where the signal table's values leave the daemon (the HTTP API in
:mod:`.http`, MQTT in :mod:`.mqtt`)."""
