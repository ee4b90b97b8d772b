"""Alerts to people: an SMS to the on-call number when a call is an emergency (Twilio REST, official client).

``SmsAlerter`` loads the ``twilio`` client and aiohttp; import it from :mod:`switchboard.alerts.sms` or from here.
"""

from .sms import (
    MAX_BODY,
    SmsAlerter,
    SmsAuthError,
    SmsError,
    SmsRateLimited,
    SmsRejected,
    SmsUnavailable,
    emergency_body,
    reference,
)

__all__ = [
    "MAX_BODY",
    "SmsAlerter",
    "SmsAuthError",
    "SmsError",
    "SmsRateLimited",
    "SmsRejected",
    "SmsUnavailable",
    "emergency_body",
    "reference",
]
