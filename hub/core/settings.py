"""Every setting of the hub, declared once: name, type, default, description.

Values come from, in rising order of precedence: the defaults below, the TOML
file given by ``--config`` (or the default path), the changes an officer made
from the central server (:data:`REMOTE_FILE` in the data directory, only the
settings in :data:`REMOTE_SETTINGS`), and ``HUB_<NAME>`` environment variables.
A bad value raises :class:`SettingsError` whose message is one line naming the
setting.

Why a drop-in file in the data directory rather than rewriting hub.toml:
hub.toml is the technician's file (root:hub 0640 in a root-owned /etc/hub,
read-only under the read-only root), and its comments would not survive a
rewrite. The daemons run as ``hub`` with only the data directory writable, and
the data partition is the one place that survives a read-only root. The loader
reads both, so every process still gets its settings from this one function.
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hub.core.errors import HubError

log = logging.getLogger(__name__)

#: Where a Pi keeps its configuration; used when it exists and no --config is given.
PI_CONFIG_PATH = Path("/etc/hub/hub.toml")
#: Where a development checkout keeps its configuration.
DEV_CONFIG_PATH = Path("var/hub.toml")


#: Longest conversion_seconds: the rendered nginx site waits 120 s for the app (proxy_read_timeout),
#: and after a conversion the message is still to be stored and answered.
MAX_CONVERSION_SECONDS = 100


class SettingsError(HubError):
    """A setting has a value the hub cannot use."""


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    description: str
    choices: tuple = ()
    secret: bool = False

    @property
    def env_var(self) -> str:
        return "HUB_" + self.name.upper()


S = Setting

#: The whole list. Keep it grouped by the part of the hub that reads it.
SETTINGS: tuple[Setting, ...] = (
    # --- the hub itself ---
    S("hub_id", str, "", "This hub's identity, stamped on every record. Empty: made once from a UUID and kept in the data directory."),
    S("hub_name", str, "", "The commune's name as villagers see it on the portal. Empty: \"Commune hub\" in the visitor's language."),
    S("data_dir", Path, Path("var"), "Directory for the database, media files and secrets (/var/lib/hub on a Pi)."),
    S("log_level", str, "info", "How much the daemons log.", choices=("debug", "info", "warning", "error")),
    S("default_language", str, "km", "Language shown to a visitor who has not chosen one.", choices=("km", "en")),
    S("timezone", str, "Asia/Phnom_Penh", "Time zone for schedules and displayed dates."),
    S("set_system_clock", bool, False, "Step the system clock when a trusted source corrects it (needs CAP_SYS_TIME; true on a Pi)."),
    # --- web portal and clerk console ---
    S("host", str, "127.0.0.1", "Address the web server listens on in `hub run`."),
    S("port", int, 8080, "Port the web server listens on in `hub run` and `hub central`."),
    S("portal_url", str, "", "Address phones are sent to by the captive portal. Empty: http://HOST:PORT/."),
    S("hostnames", list, ["hub.local"], "Extra host names that are the hub itself; any other Host is sent to the portal."),
    S("behind_proxy", bool, False, "Trust X-Forwarded-For and X-Forwarded-Proto from the local nginx."),
    S("staff_networks", list, [], "Networks (CIDR) allowed to reach the clerk console. Empty: the staff LAN's (`staff_address`), the staff Wi-Fi's and the hub itself."),
    S("secret_key", str, "", "Key that signs session cookies. Empty: made once and kept in the data directory.", secret=True),
    S("max_upload_mb", int, 20, "Largest upload accepted, in megabytes; bigger requests get 413."),
    S("max_audio_seconds", int, 300, "Longest voice recording accepted from a phone, in seconds."),
    S("login_attempts", int, 5, "Failed clerk logins allowed per address and per name in the lockout window."),
    S("login_window_minutes", int, 15, "Length of the login lockout window, in minutes."),
    S("session_hours", int, 12, "How long a clerk stays logged in."),
    S("min_free_mb", int, 200, "Below this much free space in the data directory, new recordings are refused."),
    # --- villagers' side: what one phone may do, and how uploads are converted ---
    S("feedback_per_hour", int, 20, "Messages one address (phone) may send per hour; more get 429. 0: no limit."),
    S("receipt_misses_per_hour", int, 20, "Wrong receipt or phone numbers one address may try per hour before its receipt pages get 429. 0: no limit."),
    S("receipt_lookups_per_minute", int, 30, "Receipt pages one address may open per minute through nginx (in bursts of as many)."),
    S("conversion_slots", int, 2, "Uploaded recordings and pictures converted at once, across all web workers."),
    S("conversion_queue", int, 8, "Uploads that may wait for a conversion slot; more get 503 at once."),
    S("conversion_seconds", int, 90, "Longest an upload may wait and convert before it is refused with 503; below nginx's 120 s, so a phone never gets a timeout for a message that was stored."),
    # --- loudspeaker announcements ---
    S("audio_output_device", str, "default", "ALSA device name the loudspeaker is played through."),
    S("volume", float, 1.0, "Loudspeaker volume, from 0.0 to 1.0."),
    S("amplifier_pin", str, "", "GPIO pin of the amplifier relay (e.g. GPIO17). Empty: no relay."),
    S("amplifier_active_high", bool, True, "The relay switches on when its pin is driven high."),
    S("amplifier_warmup_seconds", float, 2.0, "Wait after switching the amplifier on before the first sound."),
    S("status_led_pin", str, "", "GPIO pin of the announcer's status LED. Empty: no LED."),
    S("grace_minutes", int, 10, "An occurrence missed by a crash still plays if it is less than this late."),
    S("quiet_hours_start", str, "21:00", "Start of the night; routine announcements wait until it ends."),
    S("quiet_hours_end", str, "06:00", "End of the night."),
    # --- recording kiosk and transcription ---
    S("audio_input_device", str, "default", "ALSA device name of the kiosk microphone."),
    S("kiosk_output_device", str, "default", "ALSA device name the kiosk's prompts play through (its own small speaker, or the loudspeaker's device)."),
    S("button_pin", str, "", "GPIO pin of the kiosk's record button. Empty: no button."),
    S("button_led_pin", str, "", "GPIO pin of the LED beside the record button. Empty: no LED."),
    S("debounce_ms", int, 50, "Presses of the record button closer together than this are one press."),
    S("max_record_seconds", int, 120, "Longest kiosk recording."),
    S("silence_stop_seconds", float, 4.0, "A kiosk recording stops after this much silence."),
    S("kiosk_language", str, "km", "Language villagers speak at the kiosk.", choices=("km", "en", "ko")),
    S("speech_engine", str, "vosk", "Speech recogniser the transcriber uses, by its name in hub.voice.engines.ENGINES."),
    S("model_dirs", dict, {}, "Speech model directory per language, e.g. {km = \"/var/lib/hub/models/km\"}."),
    S("transcriber_nice", int, 19, "Scheduling niceness of the transcriber, so it never starves the portal."),
    S("model_idle_seconds", int, 300, "The transcriber gives its speech model's memory back after this long without work (0: at once)."),
    # --- sync with the central server ---
    S("central_url", str, "", "Address of the district or provincial server. Empty: no sync."),
    S("central_token", str, "", "This hub's token from `hub central add-hub`.", secret=True),
    S("sync_interval_seconds", int, 300, "Time between sync attempts while the uplink works."),
    S("sync_urgent_interval_seconds", int, 60, "Time between the small polls for urgent broadcasts (a conditional request answered 304 while nothing is new), counted against the data budget. 0: only at each sync."),
    S("sync_batch_size", int, 200, "Records sent in one request."),
    S("sync_bandwidth_kbps", int, 0, "Upload speed cap in kilobits per second. 0: no cap."),
    S("sync_daily_budget_mb", float, 50.0, "Data the sync may use per day, in megabytes. 0: no limit."),
    S("allow_insecure_http", bool, False, "Allow plain HTTP to a central server that is not on loopback."),
    S("sync_chunk_kb", int, 256, "Size of one media upload request, in kilobytes; a cut upload resends at most this much."),
    S("sync_timeout_seconds", float, 30.0, "How long to wait for the central server before a request counts as failed."),
    S("sync_max_backoff_seconds", int, 3600, "Longest wait between attempts after failures (the wait doubles from 30 s)."),
    S("backup_interval_hours", int, 24, "How often sync sends a backup of the whole hub to the central server, in hours. 0: never."),
    S("backup_warn_days", int, 7, "`hub doctor` warns when the newest backup is older than this many days."),
    # --- updates (`hub update`, downloaded by sync) ---
    S("release_key_file", Path, Path("/etc/hub/release-key.pub"), "The central server's public release key (PEM, Ed25519); a release not signed with its private half is refused."),
    S("update_root", Path, Path("/opt/hub"), "Where releases are installed (releases/VERSION, one venv each) and the current symlink the units run from."),
    S("update_health_seconds", int, 180, "A new release must pass its health check (migrations, daemons, portal, hub doctor) within this many seconds, or the hub switches back."),
    S("update_download", bool, True, "Download new releases from the central server during sync (within the data budget)."),
    # --- the central server (`hub central`) ---
    S("database_url", str, "", "Central server's database: postgresql://user@host/name, or empty for SQLite (central.db in data_dir)."),
    S("telegram_bot_token", str, "", "Bot token for mirroring public notices to Telegram. Empty: no mirror.", secret=True),
    S("telegram_chat_id", str, "", "The commune's Telegram channel, e.g. @mycommune."),
    S("telegram_api_url", str, "https://api.telegram.org", "Base address of the Telegram Bot API."),
    S("fleet_chat_id", str, "", "Central server: the officers' Telegram chat for fleet alerts (sent with telegram_bot_token). Empty: no alerts."),
    S("fleet_silent_hours", float, 24.0, "Central server: alert when a hub has not been heard from for this many hours."),
    S("fleet_disk_low_mb", int, 300, "Central server: alert when a hub reports less free disk than this, in megabytes."),
    S("fleet_alert_after_minutes", int, 15, "Central server: a problem must last this long before its alert is sent (debounce)."),
    # --- the appliance: Wi-Fi, captive network ---
    S("wifi_interface", str, "wlan0", "Wireless interface the villagers' access point runs on."),
    S("uplink_interface", str, "eth0", "Interface of the office line or 3G/4G dongle."),
    S("staff_interface", str, "eth0", "Interface of the office LAN, where clerks reach the console."),
    S("staff_address", str, "", "The hub's fixed address on the office LAN with its prefix (e.g. 192.168.1.250/24); the console is served there. Empty: only on the staff Wi-Fi and the hub itself."),
    S("ssid", str, "Commune-Hub", "Name of the villagers' open Wi-Fi network."),
    S("country_code", str, "KH", "Regulatory country of the access point."),
    S("wifi_hw_mode", str, "g", "Wi-Fi band: g for 2.4 GHz, a for 5 GHz.", choices=("g", "a")),
    S("wifi_channel", int, 6, "Wi-Fi channel; must belong to the band and the country."),
    S("max_clients", int, 30, "Most phones the access point accepts at once."),
    S("staff_ssid", str, "", "Name of a WPA2 staff network beside the open one. Empty: none."),
    S("staff_passphrase", str, "", "WPA2 passphrase of the staff network (8 to 63 characters).", secret=True),
    S("ap_address", str, "10.42.0.1", "The hub's address on the villagers' network."),
    S("dhcp_range_start", str, "10.42.0.10", "First address leased to phones."),
    S("dhcp_range_end", str, "10.42.0.250", "Last address leased to phones."),
    S("dhcp_lease_time", str, "2h", "DHCP lease time, in dnsmasq's notation."),
    S("ap_prefix", int, 24, "Prefix length of the villagers' network (24: 255.255.255.0)."),
    S("staff_wifi_interface", str, "wlan0staff", "Interface hostapd creates for the staff network (at most 15 characters)."),
    S("staff_ap_address", str, "10.43.0.1", "The hub's address on the staff Wi-Fi network; phones get the rest of its /24."),
    S("web_socket", str, "/run/hub/web.sock", "Unix socket hub-web (gunicorn) listens on and nginx proxies to."),
)

_BY_NAME = {s.name: s for s in SETTINGS}

#: What an officer may change from the central console; hub-sync writes them to REMOTE_FILE.
REMOTE_SETTINGS: tuple[str, ...] = (
    "hub_name", "quiet_hours_start", "quiet_hours_end",
    "sync_interval_seconds", "sync_daily_budget_mb", "sync_bandwidth_kbps",
    "ssid", "staff_ssid", "staff_passphrase",
)
#: The central server's changes, in data_dir, read after hub.toml; the file before the last change
#: is kept beside it with PREVIOUS_SUFFIX.
REMOTE_FILE = "remote-settings.toml"
PREVIOUS_SUFFIX = ".previous"


def _convert(setting: Setting, value: Any, from_env: bool, where: str = "") -> Any:
    """Turn a raw TOML or environment value into the setting's type, or raise."""
    where = where or (setting.env_var if from_env else setting.name)
    t = setting.type
    try:
        if t is bool:
            if isinstance(value, bool):
                return value
            if from_env and str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if from_env and str(value).lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError
        if t is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int):
                return value
            if from_env:
                return int(value)
            raise ValueError
        if t is float:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, (int, float)):
                return float(value)
            if from_env:
                return float(value)
            raise ValueError
        if t is Path:
            if not isinstance(value, str) or not value:
                raise ValueError
            return Path(value)
        if t is list:
            if from_env:
                return [v.strip() for v in str(value).split(",") if v.strip()]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
            raise ValueError
        if t is dict:
            if from_env:
                value = tomllib.loads(f"v = {value}")["v"]
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
            raise ValueError
        if not isinstance(value, str):
            raise ValueError
        return value
    except (ValueError, TypeError, tomllib.TOMLDecodeError):
        raise SettingsError(
            f"setting {where}: {value!r} is not a valid {t.__name__}"
        ) from None


class Settings:
    """The hub's settings, resolved once; read them as attributes."""

    def __init__(self, values: dict[str, Any], source: Path | None = None, remote_source: Path | None = None):
        self._values = values
        self.source = source
        #: The central server's changes file, when it was read.
        self.remote_source = remote_source

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self, hide_secrets: bool = True) -> dict[str, Any]:
        out = {}
        for s in SETTINGS:
            v = self._values[s.name]
            out[s.name] = "***" if (hide_secrets and s.secret and v) else v
        return out

    def replace(self, **changes: Any) -> Settings:
        values = dict(self._values)
        for k, v in changes.items():
            if k not in _BY_NAME:
                raise KeyError(k)
            values[k] = v
        return Settings(values, self.source, self.remote_source)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "hub.db"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def listen_url(self) -> str:
        return self.portal_url or f"http://{self.host}:{self.port}/"


def default_config_path() -> Path:
    return PI_CONFIG_PATH if PI_CONFIG_PATH.exists() else DEV_CONFIG_PATH


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"config file {path}: {e}") from None
    except OSError as e:
        raise SettingsError(f"config file {path}: {e.strerror}") from None


def remote_path(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / REMOTE_FILE


def read_remote(path: Path) -> dict[str, Any]:
    """The central server's changes kept in *path* ({} when there are none); only REMOTE_SETTINGS."""
    try:
        if not path.exists():
            return {}
    except PermissionError:  # a user who may not enter the data directory
        raise SettingsError(f"config file {path}: permission denied") from None
    raw = _read_toml(path)
    for key in raw:
        if key not in REMOTE_SETTINGS:
            raise SettingsError(f"config file {path}: setting {key!r} cannot be changed from the central server")
    return raw


def load(
    config: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    remote: dict[str, Any] | None = None,
) -> Settings:
    """Resolve every setting from defaults, the TOML file, the central server's changes and the environment.

    *remote*, when given, stands for the changes file's content: what hub-sync checks before it
    writes the file.
    """
    env = os.environ if env is None else env
    path = Path(config) if config else default_config_path()
    raw: dict[str, Any] = {}
    if path.exists():
        raw = _read_toml(path)
    elif config:
        raise SettingsError(f"config file {path}: not found")

    values: dict[str, Any] = {}
    for key in raw:
        if key not in _BY_NAME:
            log.warning("config file %s: unknown setting %r is ignored", path, key)
    data_dir_setting = _BY_NAME["data_dir"]
    if "data_dir" in (overrides or {}):
        data_dir = overrides["data_dir"]
    elif data_dir_setting.env_var in env:
        data_dir = _convert(data_dir_setting, env[data_dir_setting.env_var], from_env=True)
    elif "data_dir" in raw:
        data_dir = _convert(data_dir_setting, raw["data_dir"], from_env=False)
    else:
        data_dir = data_dir_setting.default
    remote_source = None
    if remote is None:
        remote = read_remote(remote_path(data_dir))
        remote_source = remote_path(data_dir) if remote else None
    else:
        unknown = [k for k in remote if k not in REMOTE_SETTINGS]
        if unknown:
            raise SettingsError(f"setting {unknown[0]}: cannot be changed from the central server")
    raw = {**raw, **remote}
    for s in SETTINGS:
        if s.env_var in env:
            value = _convert(s, env[s.env_var], from_env=True)
        elif s.name in raw:
            value = _convert(s, raw[s.name], from_env=False)
        else:
            value = s.default
        if s.choices and value not in s.choices:
            where = s.env_var if s.env_var in env else s.name
            raise SettingsError(
                f"setting {where}: {value!r} is not one of {', '.join(s.choices)}"
            )
        values[s.name] = value
    for k, v in (overrides or {}).items():
        values[k] = v
    _check(values)
    return Settings(values, path if path.exists() else None, remote_source)


def _check(values: dict[str, Any]) -> None:
    """Range checks that a type alone cannot express."""
    def bad(name: str, why: str) -> None:
        raise SettingsError(f"setting {name}: {values[name]!r} {why}")

    if not 0 < values["port"] < 65536:
        bad("port", "is not a port number (1-65535)")
    if not 0.0 <= values["volume"] <= 1.0:
        bad("volume", "must be between 0.0 and 1.0")
    for name in ("max_upload_mb", "max_audio_seconds", "login_attempts", "session_hours",
                 "max_record_seconds", "sync_batch_size", "max_clients", "login_window_minutes"):
        if values[name] <= 0:
            bad(name, "must be greater than 0")
    for name in ("quiet_hours_start", "quiet_hours_end"):
        v = values[name]
        hh, _, mm = v.partition(":")
        if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
            bad(name, "is not a time of day like 21:00")
    for name in ("backup_interval_hours", "backup_warn_days", "fleet_disk_low_mb", "fleet_alert_after_minutes"):
        if values[name] < 0:
            bad(name, "must not be negative")
    if values["fleet_silent_hours"] <= 0:
        bad("fleet_silent_hours", "must be greater than 0")
    for name in ("feedback_per_hour", "receipt_misses_per_hour", "receipt_lookups_per_minute", "conversion_queue"):
        if values[name] < 0:
            bad(name, "must not be negative")
    if values["update_health_seconds"] <= 0:
        bad("update_health_seconds", "must be greater than 0")
    if values["conversion_slots"] <= 0:
        bad("conversion_slots", "must be greater than 0")
    if not 1 <= values["conversion_seconds"] <= MAX_CONVERSION_SECONDS:
        bad("conversion_seconds", f"must be between 1 and {MAX_CONVERSION_SECONDS} (nginx waits 120 s for an answer)")
    if values["grace_minutes"] < 0:
        bad("grace_minutes", "must not be negative")
    if values["sync_interval_seconds"] <= 0:
        bad("sync_interval_seconds", "must be greater than 0")
    for name in ("sync_bandwidth_kbps", "sync_daily_budget_mb"):
        if values[name] < 0:
            bad(name, "must not be negative")
    if values["central_url"] and not values["central_url"].startswith(("http://", "https://")):
        bad("central_url", "must start with https:// (or http:// on loopback)")
    if values["database_url"] and not values["database_url"].startswith(("postgresql://", "postgres://")):
        bad("database_url", "must start with postgresql:// (or be empty for SQLite)")
    try:
        ZoneInfo(values["timezone"])
    except Exception:
        bad("timezone", "is not a known time zone")


def parse_text(name: str, text: str) -> Any:
    """A value typed into a form (the central console's) as the setting's type, read as an environment
    variable is; SettingsError names the setting."""
    if name not in REMOTE_SETTINGS:
        raise SettingsError(f"setting {name}: cannot be changed from the central server")
    s = _BY_NAME[name]
    value = _convert(s, text.strip() if s.type is not str else text, from_env=True, where=name)
    if s.choices and value not in s.choices:
        raise SettingsError(f"setting {name}: {value!r} is not one of {', '.join(s.choices)}")
    return value


def describe() -> list[dict[str, str]]:
    """One row per setting, for `hub settings` and the README."""
    return [
        {
            "name": s.name,
            "env": s.env_var,
            "type": s.type.__name__,
            "default": repr(s.default if not isinstance(s.default, Path) else str(s.default)),
            "description": s.description,
        }
        for s in SETTINGS
    ]


def markdown_table() -> str:
    """The settings as the Markdown table the README carries (`make docs` refreshes it)."""
    lines = ["| setting | environment | type | default | description |", "|---|---|---|---|---|"]
    for row in describe():
        desc = row["description"].replace("|", "\\|")
        lines.append(f"| `{row['name']}` | `{row['env']}` | {row['type']} | `{row['default']}` | {desc} |")
    return "\n".join(lines)
