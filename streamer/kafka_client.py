"""aiokafka client arguments from settings: bootstrap, TLS and SASL, in one place."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from streamer.config import KafkaSettings


def security_kwargs(k: KafkaSettings) -> dict[str, Any]:
    kw: dict[str, Any] = {"security_protocol": k.security_protocol}
    if k.security_protocol in ("SSL", "SASL_SSL"):
        ctx: ssl.SSLContext = create_ssl_context(
            cafile=str(k.ssl_cafile) if k.ssl_cafile else None,
            certfile=str(k.ssl_certfile) if k.ssl_certfile else None,
            keyfile=str(k.ssl_keyfile) if k.ssl_keyfile else None,
            password=k.ssl_key_password.get_secret_value() if k.ssl_key_password else None,
        )
        kw["ssl_context"] = ctx
    if k.security_protocol.startswith("SASL_"):
        kw["sasl_mechanism"] = k.sasl_mechanism
        kw["sasl_plain_username"] = k.sasl_username
        kw["sasl_plain_password"] = k.sasl_password.get_secret_value() if k.sasl_password else None
    return kw
