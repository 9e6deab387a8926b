"""Exceptions a processor raises to steer what happens to its job."""

from __future__ import annotations


class NonRetryableError(Exception):
    """The job cannot succeed by trying again: skip the remaining attempts."""


class PayloadValidationError(NonRetryableError):
    """The payload does not match the processor's payload model."""
