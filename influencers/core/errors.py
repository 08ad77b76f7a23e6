"""The project's own exceptions: each one's docstring is the reason an operator reads.

Scrapy's exceptions (`IgnoreRequest`, `DropItem`, `CloseSpider`) stay for Scrapy's flow; these
are for the core (configuration, database, accounts, tasks). `str(error)` is always one line
that is safe to print: it never contains a password or a key.
"""

from __future__ import annotations


class InfluencersError(Exception):
    """Something the operator can act on went wrong."""

    def __str__(self) -> str:
        message = super().__str__()
        return message or (self.__doc__ or type(self).__name__).strip()


class ConfigError(InfluencersError):
    """A setting is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        super().__init__(f"{variable}: {problem}")


class DatabaseError(InfluencersError):
    """A MySQL statement failed.

    The driver's exceptions never leave `influencers.core.db`: it turns each into one of these,
    so callers catch the project's classes and no module but db.py reads MySQL error codes.
    ``code`` is the server's (or the client's) error number, 0 when there is none.
    """

    def __init__(self, message: str = "", code: int = 0) -> None:
        self.code = code
        super().__init__(message)


class DatabaseUnavailable(DatabaseError):
    """MySQL cannot be reached.

    ``transient`` is False when waiting cannot help (the credentials or the TLS settings are
    refused): a long-running service rides out the others and stops on these.
    """

    def __init__(self, host: str, port: int, detail: str, *, transient: bool = True) -> None:
        self.host, self.port = host, port
        self.transient = transient
        super().__init__(f"cannot reach MySQL at {host}:{port}: {detail}")


class ConnectionLost(DatabaseUnavailable):
    """Lost the connection to MySQL (is the server running?)."""

    def __init__(self, message: str = "", code: int = 0) -> None:
        self.host, self.port = "", 0
        self.transient = True
        DatabaseError.__init__(self, message, code)


class TransactionConflict(DatabaseError):
    """A deadlock or lock wait timeout: the transaction was rolled back and may simply run again."""


class StatementTimeout(DatabaseError):
    """A statement ran over the time it was given (`db.capped`) and the server stopped it."""


class DuplicateKey(DatabaseError):
    """A row with this key already exists."""


class ValueRefused(DatabaseError):
    """The server refused a value: JSON nested deeper than its limit, or not valid JSON to it."""


class SchemaMissing(DatabaseError):
    """The database has no schema yet: run `python -m influencers db init`."""


class SecretKeyError(InfluencersError):
    """The credential key cannot decrypt stored passwords (wrong INFLUENCERS_SECRET_KEY?)."""


class AccountNotFound(InfluencersError):
    """No such account."""


class DuplicateAccount(InfluencersError):
    """An account with this username already exists."""


class QuotaExceeded(InfluencersError):
    """The account's export quota for today would be exceeded."""


class TaskNotFound(InfluencersError):
    """No such task."""


class ScheduleNotFound(InfluencersError):
    """No such schedule."""


class InvalidTransition(InfluencersError):
    """The task is not in a state that allows this."""


class ClaimLost(InfluencersError):
    """This worker no longer holds the task: its lease expired or another worker took it."""


class InvalidArgument(InfluencersError):
    """An argument is malformed."""
