"""The appliance's network: access point, DHCP/DNS, firewall and nginx configuration.

``render`` turns the settings into config files, ``commands`` adds
``hub netconfig``, and ``checks`` holds the probes ``hub doctor`` runs.
"""
