"""Getting a hub onto an SD card: `hub flash` writes and verifies an image,
`hub provision` puts one commune's configuration and secrets on its boot
partition (without mounting it), and the first-boot service moves them into
place on the Pi (``provisioning/firstboot/``).
"""
