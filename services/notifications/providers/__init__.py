"""Provider clients: each SMS gateway or mail server is a client behind one small interface.

`base` holds the interface (SendResult, the two error kinds, SmsClient and EmailClient);
`config` builds the clients from environment variables. Nothing here touches a database.
"""

from services.notifications.providers.base import (
    EmailClient,
    PermanentProviderError,
    ProviderError,
    SendResult,
    SmsClient,
    TransientProviderError,
    mask_number,
)

__all__ = [
    "EmailClient",
    "PermanentProviderError",
    "ProviderError",
    "SendResult",
    "SmsClient",
    "TransientProviderError",
    "mask_number",
]
