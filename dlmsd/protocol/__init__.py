"""The pure protocol core (sans-I/O).

Nothing below this package imports asyncio, socket, serial or time: every module
parses or builds bytes, or moves a protocol state machine, and returns events.
Transports (``dlmsd.transport``) and pollers own I/O and the clock.
"""
