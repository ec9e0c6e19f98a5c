"""consume: Kafka consumer, reading decode/validation, warm-up from the log."""
