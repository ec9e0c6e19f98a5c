"""consume: Kafka consumer, reading decode/validation, failed-thermocouple fill, warm-up from
the log, and the same decoding for recorded series (training, evaluation)."""
