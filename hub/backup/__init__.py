"""Backups of a hub: one archive holds the database, the media, the settings and the keys.

:mod:`hub.backup.archive` writes and checks the archive, :mod:`hub.backup.restore`
puts one onto a (new) card, :mod:`hub.backup.upload` sends one to the central
server during sync, and :mod:`hub.backup.checks` tells `hub doctor` when the
last one was made.
"""
