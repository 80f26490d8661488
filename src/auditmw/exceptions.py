"""Exceptions raised by auditmw.

The tree::

    AuditError
    ├── ConfigurationError          a setting is invalid; the message names it and the fix
    │   └── MissingDependencyError  an optional extra is not installed (``.extra``)
    ├── PolicyError                 the policy document is invalid (``.path``, ``.value``)
    ├── IdentityError               key material could not be loaded (never per request)
    ├── SinkError                   a sink could not store a batch
    │   ├── SinkUnavailableError    the destination cannot be reached
    │   │   └── SinkThrottledError  it asked to retry later (``.retry_after``)
    │   └── SinkTimeoutError        the destination did not answer in time
    ├── DeliveryError               the delivery layer could not accept an event
    │   └── DeliveryTimeoutError    ``block`` overflow or a durable wait timed out
    └── ChainError                  an integrity chain is inconsistent
        └── ChainBrokenError        a link does not verify (``.index``)

    DropEvent (BaseException)       raised by a processor to discard an event

Failed authentication is *not* an exception: it is recorded as data on the actor.
The application's own exceptions are always re-raised unchanged.

.. versionadded:: 0.1.0
"""

from __future__ import annotations


class AuditError(Exception):
    """Root of every error auditmw raises."""


class ConfigurationError(AuditError, ValueError):
    """A configuration value is invalid.

    Args:
        message: what is wrong and how to fix it.
        setting: the dotted name of the offending setting, when known.
    """

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional dependency is missing; ``extra`` names the extra that provides it."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the '{module}' package, which is not installed. "
            f"Install it with: pip install 'auditmw[{extra}]'",
            setting=extra,
        )
        self.extra = extra
        self.module = module


class PolicyError(AuditError, ValueError):
    """The policy document is invalid.

    Args:
        message: the human explanation.
        path: JSON-Pointer-like path of the bad key (``/rules/2/level``).
        value: the offending value, when safe to show.
    """

    def __init__(self, message: str, *, path: str = "", value: object = None) -> None:
        super().__init__(message)
        self.path = path
        self.value = value


class IdentityError(AuditError):
    """Identity key material (secrets, PEM keys, key registries) could not be loaded."""


class SinkError(AuditError):
    """A sink could not store a batch.

    Args:
        message: what happened (never containing event payloads or secrets).
        retryable: whether sending the same batch again may succeed.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class SinkUnavailableError(SinkError):
    """The sink's destination cannot be reached."""


class SinkThrottledError(SinkUnavailableError):
    """The destination asked to retry later (HTTP 429/503); ``retry_after`` is in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SinkTimeoutError(SinkError):
    """The sink's destination did not answer in time."""


class DeliveryError(AuditError):
    """The delivery layer could not accept an event."""


class DeliveryTimeoutError(DeliveryError):
    """Waiting for buffer space or a durable commit took longer than allowed."""


class ChainError(AuditError):
    """An integrity chain is inconsistent."""


class ChainBrokenError(ChainError):
    """A chain link does not verify; ``index`` is the position of the first bad event."""

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(message)
        self.index = index


class DecryptionError(AuditError):
    """An encrypted audit file cannot be decrypted: missing or wrong key, or altered data.

    Args:
        message: what failed, naming the file and the key id, and the fix.
        key_id: the key id involved, when known.

    .. versionadded:: 0.1.0
    """

    def __init__(self, message: str, *, key_id: str | None = None) -> None:
        super().__init__(message)
        self.key_id = key_id


class DropEvent(BaseException):
    """Raised by a processor to discard the event; only the pipeline catches it."""


class SettingError(PolicyError, ConfigurationError):
    """A setting (in a document, a settings mapping or ``AuditConfig``) is invalid.

    Both a :class:`~auditmw.exceptions.ConfigurationError` (``.setting``, dotted) and
    a :class:`~auditmw.exceptions.PolicyError` (``.path``, a JSON Pointer), so that
    code catching either sees every configuration mistake.

    Args:
        message: what is wrong, the bad value and what is allowed.
        path: JSON Pointer of the bad key (``/sinks/0/path``).
        value: the offending value, when safe to show.

    .. versionadded:: 0.2.0
    """

    def __init__(self, message: str, *, path: str = "", value: object = None) -> None:
        PolicyError.__init__(self, message, path=path, value=value)
        self.setting = path.strip("/").replace("/", ".") or None


class NoSinksWarning(UserWarning):
    """The configuration has no sinks: events are built but written nowhere.

    Raised (as a warning) when a configuration is built from settings or a document;
    silenced by the auditmw pytest plugin, where events are captured instead.

    .. versionadded:: 0.2.0
    """
