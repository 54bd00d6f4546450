"""Salesforce's error answers: a JSON list of ``{message, errorCode, fields?}``."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class SalesforceError(Exception):
    """An error the API answers as ``[{"message", "errorCode", "fields"?}]``.

    Args:
        status: HTTP status of the answer.
        error_code: Salesforce's error code (``INVALID_FIELD``, ``NOT_FOUND``...).
        message: the message, worded as Salesforce words it.
        fields: the fields concerned, when Salesforce names them.
    """

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        fields: list[str] | None = None,
    ) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        """The JSON body of the answer."""
        item: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]

    def as_record_error(self) -> dict[str, Any]:
        """The error as it appears inside a per-record save result."""
        return {"statusCode": self.error_code, "message": self.message, "fields": self.fields or []}


def bad_request(error_code: str, message: str, fields: list[str] | None = None) -> SalesforceError:
    """A 400 answer."""
    return SalesforceError(HTTPStatus.BAD_REQUEST, error_code, message, fields)


def not_found(message: str = "The requested resource does not exist", error_code: str = "NOT_FOUND") -> SalesforceError:
    """A 404 answer."""
    return SalesforceError(HTTPStatus.NOT_FOUND, error_code, message)


def invalid_session() -> SalesforceError:
    """The 401 answer to a missing, unknown or expired token."""
    return SalesforceError(HTTPStatus.UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid")


class RecordError(Exception):
    """A DML error on one record (reported per record in collections and Bulk results)."""

    def __init__(self, status_code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.fields = fields or []

    def as_result(self) -> dict[str, Any]:
        """The error inside a save result: ``{statusCode, message, fields}``."""
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}

    def as_api_error(self, status: int = HTTPStatus.BAD_REQUEST) -> SalesforceError:
        """The same error as a single-record REST answer."""
        return SalesforceError(status, self.status_code, self.message, self.fields)
