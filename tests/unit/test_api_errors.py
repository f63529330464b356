"""Every kind of domain error has its HTTP status and stable code in api/errors.py."""

from __future__ import annotations

from api import errors
from shared import errors as domain


def test_every_domain_error_kind_is_mapped_to_a_status_and_code() -> None:
    kinds = [
        kind
        for kind in vars(domain).values()
        if isinstance(kind, type) and issubclass(kind, domain.DomainError)
    ]
    unmapped = [
        kind.__name__ for kind in kinds if kind is not domain.DomainError and kind not in errors.STATUS
    ]
    assert unmapped == []
    codes = [code for _, code in errors.STATUS.values()]
    assert len(codes) == len(set(codes))  # a client can tell every kind apart


def test_a_subclass_answers_as_its_nearest_mapped_kind() -> None:
    class StaleRead(domain.Conflict):
        pass

    assert errors.status_of(StaleRead("x")) == (409, "CONFLICT")
    assert errors.status_of(domain.DomainError("x")) == errors.INTERNAL
