"""Hub releases: signed by the central server, installed beside the running one, rolled back when unhealthy.

- :mod:`hub.update.release`: the release file (wheel + manifest + Ed25519 signature), made and checked.
- :mod:`hub.update.install`: A/B release directories under ``/opt/hub``, the atomic switch of
  ``/opt/hub/current``, the health check, the rollback and the recovery after a power cut.
- :mod:`hub.update.download`: fetching a release from the central server during sync.
"""
