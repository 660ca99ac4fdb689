"""The Khmer lunar date (Chhankitek), as people use it for festivals and meetings.

The rules are the traditional calculation from the Buddhist-era year:

* aharkun = floor((BE * 292207 + 499) / 800) + 4, the days elapsed since the era's start;
* kromthupul = 800 - ((BE * 292207 + 499) mod 800); the solar year is long (366 days) when it is 207 or less;
* avoman = (11 * aharkun + 25) mod 692; a leap day (ជេស្ឋ gets 30 days) when it is 126 or less in a
  long solar year, 137 or less otherwise, except 137 followed by 0 (the next year takes it);
* bodithey = (floor((11 * aharkun + 25) / 692) + aharkun + 29) mod 30; a leap month (អាសាឍ twice,
  បឋមាសាឍ and ទុតិយាសាឍ, 30 days each) when it is 25 or more or 5 or less, except 25 followed by 5
  (only the 5 is), and 24 followed by 6 is one;
* a year cannot have both: a leap month then, and the leap day moves to the next year.

Months alternate 29 and 30 days from មិគសិរ (29). Dates are counted from 1 January 1900, which was
១ កើត ខែបុស្ស. The BE year whose rules apply to a month is the one of its Gregorian start: the year
+ 544 from May on (ជេស្ឋ and អាសាឍ always start after April), which is all the rules look at.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

EPOCH = date(1900, 1, 1)
#: Month numbers: 0 មិគសិរ ... 11 កត្តិក; 12 and 13 are the two អាសាឍ of a leap-month year.
MONTHS_KM = ("មិគសិរ", "បុស្ស", "មាឃ", "ផល្គុន", "ចេត្រ", "ពិសាខ", "ជេស្ឋ", "អាសាឍ", "ស្រាពណ៍",
             "ភទ្របទ", "អស្សុជ", "កត្តិក", "បឋមាសាឍ", "ទុតិយាសាឍ")
MONTHS_EN = ("Migasir", "Bos", "Meak", "Phalkun", "Chet", "Pisak", "Jesth", "Asadh", "Srap",
             "Phutrobot", "Assoch", "Kadeuk", "Pathamasadh", "Tutiyasadh")
PUS, JESTH, ASADH, SRAP, KADEUK, ASADH_1, ASADH_2 = 1, 6, 7, 8, 11, 12, 13
WEEKDAYS_KM = ("ចន្ទ", "អង្គារ", "ពុធ", "ព្រហស្បតិ៍", "សុក្រ", "សៅរ៍", "អាទិត្យ")
KHMER_DIGITS = str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩")
#: The range the calculation is checked for; outside it nothing is shown.
FIRST, LAST = date(1900, 1, 1), date(2199, 12, 31)


def aharkun(be: int) -> int:
    return (be * 292207 + 499) // 800 + 4


def kromthupul(be: int) -> int:
    return 800 - (be * 292207 + 499) % 800


def avoman(be: int) -> int:
    return (11 * aharkun(be) + 25) % 692


def bodithey(be: int) -> int:
    a = aharkun(be)
    return ((11 * a + 25) // 692 + a + 29) % 30


def _leap_month_by_bodithey(be: int) -> bool:
    b = bodithey(be)
    if b == 25 and bodithey(be + 1) == 5:
        return False
    if b == 24 and bodithey(be + 1) == 6:
        return True
    return b >= 25 or b <= 5


def _leap_day_by_avoman(be: int) -> bool:
    a = avoman(be)
    if kromthupul(be) <= 207:
        return a <= 126
    if a == 137 and avoman(be + 1) == 0:
        return False
    return a <= 137


def year_kind(be: int) -> str:
    """"month" (384 days), "day" (355 days, ជេស្ឋ has 30) or "normal" (354 days)."""
    month, day = _leap_month_by_bodithey(be), _leap_day_by_avoman(be)
    if month:
        return "month"
    if day:
        return "day"
    # A year that had both keeps the month and gives its leap day to this one.
    if _leap_month_by_bodithey(be - 1) and _leap_day_by_avoman(be - 1):
        return "day"
    return "normal"


def _month_days(month: int, be: int) -> int:
    if month in (ASADH_1, ASADH_2):
        return 30
    if month == JESTH and year_kind(be) == "day":
        return 30
    return 29 if month % 2 == 0 else 30


def _next_month(month: int, be: int) -> int:
    if month == JESTH and year_kind(be) == "month":
        return ASADH_1
    if month == ASADH_1:
        return ASADH_2
    if month == ASADH_2:
        return SRAP
    return (month + 1) % 12


def _be_of(start: date) -> int:
    return start.year + (544 if start.month >= 5 else 543)


@lru_cache(maxsize=1)
def _month_starts() -> tuple[list[date], list[int]]:
    """The first day and the number of every lunar month from the epoch to past LAST."""
    starts, months = [], []
    day, month = EPOCH, PUS
    while day <= LAST:
        starts.append(day)
        months.append(month)
        be = _be_of(day)
        day += timedelta(days=_month_days(month, be))
        month = _next_month(month, be)
    starts.append(day)
    months.append(month)
    return starts, months


@dataclass(frozen=True)
class LunarDate:
    day: int          # 1-15
    waxing: bool      # កើត (waxing) or រោច (waning)
    month: int        # index into MONTHS_KM
    weekday: int      # 0 Monday

    def khmer(self, weekday: bool = True) -> str:
        """E.g. ថ្ងៃសុក្រ ៥ កើត ខែពិសាខ."""
        text = f"{self.day} {'កើត' if self.waxing else 'រោច'} ខែ{MONTHS_KM[self.month]}".translate(KHMER_DIGITS)
        return f"ថ្ងៃ{WEEKDAYS_KM[self.weekday]} {text}" if weekday else text

    def english(self) -> str:
        """E.g. 5th waxing day of Pisak."""
        n = self.day
        suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        return f"{n}{suffix} {'waxing' if self.waxing else 'waning'} day of {MONTHS_EN[self.month]}"


def lunar_date(value: date) -> LunarDate | None:
    """The Khmer lunar date of *value* (a local date), or None outside 1900-2199."""
    if isinstance(value, datetime):
        value = value.date()
    if not FIRST <= value <= LAST:
        return None
    starts, months = _month_starts()
    i = bisect_right(starts, value) - 1
    n = (value - starts[i]).days  # 0-29
    return LunarDate(day=n + 1 if n < 15 else n - 14, waxing=n < 15, month=months[i],
                     weekday=value.weekday())
