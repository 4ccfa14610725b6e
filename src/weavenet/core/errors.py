"""Error families: who is at fault decides what we do about it.

WeaveError
 +-- ProtocolError
 |    +-- RemoteProtocolError   the peer sent something wrong: close only that connection
 |    +-- LocalProtocolError    we misused a protocol object: a bug on our side
 +-- ConfigError               bad flags, addresses or settings given by the user
"""


class WeaveError(Exception):
    """Base of every error weavenet raises on purpose."""


class ProtocolError(WeaveError):
    """Base of protocol errors; not raised directly."""


class RemoteProtocolError(ProtocolError):
    """The remote peer broke the protocol; the connection to it must be closed."""


class LocalProtocolError(ProtocolError):
    """We broke the protocol (API misuse)."""


class ConfigError(WeaveError):
    """Invalid configuration given by the user."""
