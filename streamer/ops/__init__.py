"""Operations support: HTTP endpoints, metrics, logging, the systemd notify protocol."""
