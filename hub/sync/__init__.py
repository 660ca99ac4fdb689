"""Sync with the central server whenever the uplink is up: outbox, media, publications, Telegram."""
