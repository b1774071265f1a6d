"""Messages to people's phones: an outbox row per message, sent by a job through a provider."""
