"""commit: offsets committed only once every derived record is acknowledged."""
