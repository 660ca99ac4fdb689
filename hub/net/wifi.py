"""Which Wi-Fi channels the access point may use: the checks hostapd leaves to the driver.

hostapd accepts channel 14 in hw_mode g, or a 5 GHz channel in 2.4 GHz mode,
and only the driver refuses them later, on the Pi, with a message a
technician cannot act on. These checks run before any file is written, and
their errors name the setting to change.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.core.settings import SettingsError

#: Channels IEEE 802.11 defines in each band (20 MHz channels only).
BAND_CHANNELS: dict[str, tuple[int, ...]] = {
    "g": tuple(range(1, 15)),
    "a": (
        36,
        40,
        44,
        48,
        52,
        56,
        60,
        64,
        100,
        104,
        108,
        112,
        116,
        120,
        124,
        128,
        132,
        136,
        140,
        144,
        149,
        153,
        157,
        161,
        165,
    ),
}
BAND_NAMES = {"g": "2.4 GHz", "a": "5 GHz"}


@dataclass(frozen=True)
class Rule:
    """One frequency range of a regulatory domain, in MHz."""

    start: int
    end: int
    radar: bool = False  # DFS: the AP must detect radar first; the Pi's firmware cannot
    no_ir: bool = False  # no initiating radiation: an access point may not start here


#: Ranges from wireless-regdb's db.txt (the kernel's regulatory database).
#: "00" is the world domain the kernel uses for an unknown country.
REGULATORY: dict[str, tuple[Rule, ...]] = {
    "KH": (
        Rule(2402, 2482),
        Rule(5170, 5250),
        Rule(5250, 5330, radar=True),
        Rule(5490, 5710, radar=True),
    ),
    "00": (
        Rule(2402, 2472),
        Rule(2457, 2482, no_ir=True),
        Rule(5170, 5250),
        Rule(5250, 5330, radar=True, no_ir=True),
        Rule(5490, 5730, radar=True, no_ir=True),
        Rule(5735, 5835, radar=True, no_ir=True),
    ),
}


def centre_mhz(channel: int) -> int:
    """The centre frequency of a 20 MHz channel."""
    if channel == 14:
        return 2484
    if 1 <= channel <= 13:
        return 2407 + 5 * channel
    return 5000 + 5 * channel


def allowed_channels(country: str, hw_mode: str) -> list[int]:
    """Channels an access point may start on in *country* and band *hw_mode*."""
    return [c for c in BAND_CHANNELS[hw_mode] if _rule_problem(country, hw_mode, c) is None]


def _rule_problem(country: str, hw_mode: str, channel: int) -> str | None:
    rules = REGULATORY.get(country, REGULATORY["00"])
    if hw_mode == "g" and channel == 14:
        return "channel 14 is only for 802.11b in Japan"
    low, high = centre_mhz(channel) - 10, centre_mhz(channel) + 10
    for rule in rules:
        if rule.start <= low and high <= rule.end:
            if rule.no_ir:
                return "an access point may not start there (no-IR)"
            if rule.radar:
                return "it needs radar detection (DFS), which the Pi's Wi-Fi does not do"
            return None
    return "it is not allowed there"


def check_channel(country: str, hw_mode: str, channel: int) -> None:
    """Raise a one-line :class:`SettingsError` naming the setting if the channel cannot work."""
    country = country.upper()
    if len(country) != 2 or not country.isalpha():
        raise SettingsError(f"setting country_code: {country!r} is not a two-letter country code")
    band = BAND_NAMES[hw_mode]
    if channel not in BAND_CHANNELS[hw_mode]:
        raise SettingsError(
            f"setting wifi_channel: {channel} is not a {band} channel (wifi_hw_mode = {hw_mode!r});"
            f" use one of {_short(BAND_CHANNELS[hw_mode])}"
        )
    problem = _rule_problem(country, hw_mode, channel)
    if problem:
        where = country if country in REGULATORY else f"{country} (not in the hub's table; world rules)"
        raise SettingsError(
            f"setting wifi_channel: {channel} cannot be used in {where}: {problem};"
            f" use one of {_short(allowed_channels(country, hw_mode))}"
        )


def _short(channels) -> str:
    return ", ".join(str(c) for c in channels) or "none"
