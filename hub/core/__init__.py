"""The floor every part of the hub stands on; it imports nothing from the rest of the hub.

Errors, settings, the database and its migrations runner, the shared context,
the clock, media files, Khmer text, shipped assets, the daemon skeleton, the
sound library, the one catalogue marker and the one check-result type.
"""
