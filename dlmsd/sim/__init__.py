"""dlms-sim: a DLMS/COSEM meter simulator (the demo's meter and the tests' meter)."""
