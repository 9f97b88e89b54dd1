"""A copy of D1's wire model without its validation extras: the fastest msgspec can go.

The same fields, names and types as :mod:`cardflow._wire`, but no pattern on
``operationId`` and no required offset on timestamps. msgspec checks a pattern by
calling Python's ``re``, which costs about 0.4 µs an operation, nearly half of
decoding one: this model shows what decoding costs without that check.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec


class _Wire(msgspec.Struct, frozen=True, kw_only=True, rename="camel", gc=False):
    pass


class Checkpoint(_Wire, frozen=True):
    checkpoint_time: datetime | None = None
    city: str | None = None
    country_name: str | None = None
    message: str | None = None


class Shipment(_Wire, frozen=True):
    carrier: str | None = None
    tracking_number: str | None = None
    status: str | None = None
    message: str | None = None
    tracking_url: str | None = None
    estimated_delivery_date: datetime | None = None
    last_updated_at: datetime | None = None
    last_checkpoint: Checkpoint | None = None


class Details(_Wire, frozen=True):
    status: str | None = None
    reason: str | None = None
    consumer_id: str | None = None
    due_date: date | None = None
    production_site: str | None = None
    shipment: Shipment | None = None
    input_file_name: str | None = None
    issuer_request_id: str | None = None


class Operation(_Wire, frozen=True):
    operation_id: str
    operation: str
    status: str
    start_time: datetime
    card_id: str
    end_time: datetime | None = None
    details: Details | None = None
    error_code: str | None = None
    error: str | None = None
    input_file_name: str | None = None
    issuer_request_id: str | None = None


class Body(msgspec.Struct, gc=False):
    operations: list[Operation]
