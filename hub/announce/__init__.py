"""Loudspeaker announcements: schedules, the amplifier relay, playout that survives power cuts.

- :mod:`hub.announce.schedule` turns a clerk's choice into an RFC 5545 RRULE
  and back, and knows quiet hours and the grace window (pure, clock injected);
- :mod:`hub.announce.store` is the only code that writes announcements,
  their occurrences and the ``play_log``;
- :mod:`hub.announce.devices` drives the amplifier relay and status LED;
- :mod:`hub.announce.player` plays through PyAudio to a named ALSA device;
- :mod:`hub.announce.daemon` is ``hub-announcer``.
"""
