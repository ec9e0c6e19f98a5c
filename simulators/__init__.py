"""Caster simulator, heat files, replay into Kafka, and the embedded broker."""
