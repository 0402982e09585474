"""The one error tree of dlmsd.

::

    DlmsdError                      root of everything dlmsd raises on purpose
    ├── ConfigError                 bad configuration file, bad CLI argument
    │   ├── ConfigValueError        a text value that cannot be used (OBIS code,
    │   │   │                       server address, address formula); also a ValueError
    │   │   └── InputError          dlmsctl decode: input that is neither hex nor a
    │   │                           trace log (dlmsd.ctl.inputs)
    │   ├── KeyFileError            ECDSA key file unusable (dlmsd.keys)
    │   └── CounterStoreError       invocation counter file unusable (dlmsd.counters)
    ├── ProtocolError               a protocol rule was broken (carries .code)
    │   ├── LocalProtocolError      we were asked to do something illegal
    │   │   └── RequestTooLarge     a request longer than the meter's max PDU (the
    │   │                           reader then asks for fewer attributes at once)
    │   └── RemoteProtocolError     the peer sent something illegal
    │       ├── DecodeError         bytes that cannot be decoded (malformed frame/APDU)
    │       │   └── ChecksumError   HDLC frame whose HCS or FCS does not match
    │       │                       (dlmsd.protocol.hdlc_frame)
    │       ├── AssociationRejected AARE with result != accepted (result, diagnostic)
    │       ├── AuthenticationFailure  GCM tag or HLS reply does not verify
    │       │                          (dlmsd.protocol.security)
    │       ├── ServiceError        ExceptionResponse / confirmed-service-error
    │       ├── LinkOutOfStep       the HDLC link must be set up again: the meter
    │       │                       rejected a frame (FRMR) or its N(S)/N(R) do not fit
    │       │                       (dlmsd.protocol.hdlc raises it); the poller
    │       │                       associates again at once, once per scan
    │       └── CipherError         dlms-sim: a ciphered request the simulated meter
    │                               refuses (.service_error, .counter) (dlmsd.sim.auth)
    ├── DataAccessError             a GET/read answered with a DataAccessResult != success
    ├── ProfileStateError           a profile's state file unusable (dlmsd.profile_state):
    │                               the profile starts over with its backfill
    └── TransportError              the line or socket failed
        └── DlmsTimeout             no answer in time (also a TimeoutError)
            └── AnswerLost          the meter is there, the answer is lost for good (an
                                    HDLC meter heard but out of step; SN over the
                                    wrapper): the poller associates again at once,
                                    once per scan

Every exception class defined in the package is drawn here, under its parent, with
its module when it is not defined in this one (``tests/test_errors.py`` checks it).

Rules: wire decoding never raises bare ``ValueError``/``KeyError``/``IndexError``
(only :class:`DecodeError`); text from a configuration or command line is refused
with a :class:`ConfigError` (the pure parsers raise :class:`ConfigValueError`, also a
``ValueError``).  Bare built-in exceptions are left for programming errors only (an
argument no input can produce).  Errors never carry passwords or keys in their text.
``asyncio.CancelledError`` is never caught and converted.

A re-raise keeps the type and the cause: re-raise as is (``raise``), or add context
with ``raise with_context(exc, "what was done") from exc`` (same type, same
attributes).  A different type only on purpose, for a caller that must tell it
apart (the poller backs off longer on :class:`AssociationRejected`, and tells
:class:`DlmsTimeout` from a dropped :class:`TransportError`), and then chained
``from exc``.  ``from None`` only drops a cause that is not a :class:`DlmsdError` and
may carry what must not be shown (a ``JSONDecodeError`` holds the whole document,
passwords included; ``cryptography`` errors about key material).
"""

from __future__ import annotations

from typing import TypeVar

__all__ = [
    "AnswerLost",
    "AssociationRejected",
    "ConfigError",
    "ConfigValueError",
    "DataAccessError",
    "DecodeError",
    "DlmsTimeout",
    "DlmsdError",
    "LinkOutOfStep",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestTooLarge",
    "ServiceError",
    "TransportError",
    "with_context",
]


class DlmsdError(Exception):
    """Root of every error dlmsd raises on purpose."""


class ConfigError(DlmsdError):
    """The configuration (file or command line) is wrong.

    ``problems`` lists every problem found, each already naming its JSON path,
    the bad value and what is allowed; ``warnings`` what was found beside them that
    would not stop the protocol (unknown keys, settings that are not used).
    """

    def __init__(self, message: str, problems: list[str] | None = None,
                 warnings: list[str] | None = None) -> None:
        self.problems: list[str] = problems if problems is not None else [message]
        self.warnings: list[str] = warnings if warnings is not None else []
        super().__init__(message)


class ConfigValueError(ConfigError, ValueError):
    """A value given as text (configuration file, command line, simulator model) that
    cannot be used: an OBIS code, a client or server address, an address formula.

    Raised by the pure parsers (:meth:`dlmsd.protocol.obis.Obis.parse`,
    :func:`dlmsd.addressing.resolve_server_address`, ...); the configuration loader
    lists the message as one of its problems.  Also a ``ValueError``, as ``int("x")``
    is, so a caller that catches ``ValueError`` keeps working.
    """


class ProtocolError(DlmsdError):
    """A protocol rule was broken. ``code`` is the protocol's own code, if any."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol state does not allow."""


class RequestTooLarge(LocalProtocolError):
    """A request would be longer than the meter's max receive PDU size."""


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


class LinkOutOfStep(RemoteProtocolError):
    """The HDLC link is out of step and must be set up again (IEC 62056-46 / ISO/IEC
    13239: the primary resets the link with SNRM, or disconnects): the meter rejected
    one of our frames (FRMR), or its N(S)/N(R) do not fit ours.  The poller associates
    again at once (a new link and association), once per scan, without going offline."""


class DataAccessError(DlmsdError):
    """The meter refused one attribute with a DataAccessResult other than success."""

    def __init__(self, message: str, result: int) -> None:
        self.result = result
        super().__init__(message)


class TransportError(DlmsdError):
    """The TCP connection or serial line failed (cannot open, closed, I/O error)."""


class DlmsTimeout(TransportError, TimeoutError):
    """No (complete) answer arrived within the timeout."""


class AnswerLost(DlmsTimeout):
    """The meter is there but its answer is lost for good: an HDLC meter was heard during
    the exchange yet its answer never came whole (it moved past a lost segment), or an SN
    request over the wrapper went unanswered (without an invoke-id it cannot be sent
    again on the same connection).  The poller associates again at once (a new
    connection: a late answer cannot cross it), once per scan, without going offline."""


_E = TypeVar("_E", bound=DlmsdError)


def with_context(error: _E, context: str) -> _E:
    """``error`` again, with ``context`` in front of its message: the same type and the
    same attributes (``result``, ``code``, ``problems``, ...), so a caller that tells
    errors apart by type still can.  Raise it ``from error``::

        except DlmsdError as exc:
            raise with_context(exc, f"reading {obis}") from exc

    The message adds only ``context`` (which must hold no secret) to a message that
    already holds none.
    """
    cls = type(error)
    message = f"{context}: {error}"
    copy = cls.__new__(cls, message)  # not __init__: its arguments differ per class
    copy.args = (message,)
    copy.__dict__.update(error.__dict__)
    return copy
