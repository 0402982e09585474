"""The one error tree of dlmsd.

::

    DlmsdError                      root of everything dlmsd raises on purpose
    ├── ConfigError                 bad configuration file, bad CLI argument
    │   └── CounterStoreError       invocation counter file unusable (dlmsd.counters)
    ├── ProtocolError               a protocol rule was broken (carries .code)
    │   ├── LocalProtocolError      we were asked to do something illegal
    │   └── RemoteProtocolError     the peer sent something illegal
    │       ├── DecodeError         bytes that cannot be decoded (malformed frame/APDU)
    │       ├── AssociationRejected AARE with result != accepted (result, diagnostic)
    │       ├── AuthenticationFailure  GCM tag or HLS reply does not verify
    │       │                          (dlmsd.protocol.security)
    │       └── ServiceError        ExceptionResponse / confirmed-service-error
    ├── DataAccessError             a GET/read answered with a DataAccessResult != success
    └── TransportError              the line or socket failed
        └── DlmsTimeout             no answer in time (also a TimeoutError)

Rules: wire decoding never raises bare ``ValueError``/``KeyError``/``IndexError``
(only :class:`DecodeError`); errors never carry passwords or keys in their text.
``asyncio.CancelledError`` is never caught and converted.
"""

from __future__ import annotations

__all__ = [
    "AssociationRejected",
    "ConfigError",
    "DataAccessError",
    "DecodeError",
    "DlmsTimeout",
    "DlmsdError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "ServiceError",
    "TransportError",
]


class DlmsdError(Exception):
    """Root of every error dlmsd raises on purpose."""


class ConfigError(DlmsdError):
    """The configuration (file or command line) is wrong.

    ``problems`` lists every problem found, each already naming its JSON path,
    the bad value and what is allowed.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems: list[str] = problems if problems is not None else [message]
        super().__init__(message)


class ProtocolError(DlmsdError):
    """A protocol rule was broken. ``code`` is the protocol's own code, if any."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol state does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class DecodeError(RemoteProtocolError):
    """Bytes that cannot be decoded: a malformed frame, APDU or A-XDR value.

    Incomplete input is not an error (decoders report that they need more data);
    this is raised only for input that can never become valid.
    """


class AssociationRejected(RemoteProtocolError):
    """The meter rejected the association (AARE result != accepted).

    ``result`` is the association-result (1 rejected-permanent, 2 rejected-transient),
    ``diagnostic`` the acse-service-user/provider diagnostic value, ``source`` names
    which of the two ("user" or "provider").
    """

    def __init__(self, message: str, result: int, diagnostic: int | None, source: str) -> None:
        self.result = result
        self.diagnostic = diagnostic
        self.source = source
        super().__init__(message, code=result)


class ServiceError(RemoteProtocolError):
    """The meter answered with an ExceptionResponse or a confirmed-service-error."""


class DataAccessError(DlmsdError):
    """The meter refused one attribute with a DataAccessResult other than success."""

    def __init__(self, message: str, result: int) -> None:
        self.result = result
        super().__init__(message)


class TransportError(DlmsdError):
    """The TCP connection or serial line failed (cannot open, closed, I/O error)."""


class DlmsTimeout(TransportError, TimeoutError):
    """No (complete) answer arrived within the timeout."""
