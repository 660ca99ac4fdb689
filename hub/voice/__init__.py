"""Spoken input: the push-button recording kiosk and offline transcription.

Two daemons live here: ``hub-recorder`` (:mod:`hub.voice.recorder_daemon`)
drives the button, LED, microphone and prompts; ``hub-transcriber``
(:mod:`hub.voice.transcriber_daemon`) turns every recording into text where
a speech model for its language is installed.
"""
