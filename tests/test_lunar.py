"""The Khmer lunar calendar against dates published for festivals and the New Year."""

from __future__ import annotations

from datetime import date

import pytest

from hub.core import lunar

#: (Gregorian date, lunar date as published): the government's public holidays and the royal
#: announcements of the New Year (Moha Songkran).
PUBLISHED = [
    ("2022-05-15", "ថ្ងៃអាទិត្យ ១៥ កើត ខែពិសាខ"),     # Visak Bochea 2022
    ("2023-05-04", "ថ្ងៃព្រហស្បតិ៍ ១៥ កើត ខែពិសាខ"),  # Visak Bochea 2023
    ("2024-05-22", "ថ្ងៃពុធ ១៥ កើត ខែពិសាខ"),        # Visak Bochea 2024
    ("2025-05-11", "ថ្ងៃអាទិត្យ ១៥ កើត ខែពិសាខ"),     # Visak Bochea 2025
    ("2024-02-24", "ថ្ងៃសៅរ៍ ១៥ កើត ខែមាឃ"),         # Meak Bochea 2024
    ("2025-02-12", "ថ្ងៃពុធ ១៥ កើត ខែមាឃ"),          # Meak Bochea 2025
    ("2023-10-14", "ថ្ងៃសៅរ៍ ១៥ រោច ខែភទ្របទ"),      # Pchum Ben 2023
    ("2024-10-02", "ថ្ងៃពុធ ១៥ រោច ខែភទ្របទ"),       # Pchum Ben 2024
    ("2025-09-22", "ថ្ងៃចន្ទ ១៥ រោច ខែភទ្របទ"),       # Pchum Ben 2025
    ("2024-05-26", "ថ្ងៃអាទិត្យ ៤ រោច ខែពិសាខ"),      # Royal Ploughing Ceremony 2024
    ("2025-05-15", "ថ្ងៃព្រហស្បតិ៍ ៤ រោច ខែពិសាខ"),   # Royal Ploughing Ceremony 2025
    ("2024-11-15", "ថ្ងៃសុក្រ ១៥ កើត ខែកត្តិក"),       # Water Festival 2024, full moon
    ("2025-11-05", "ថ្ងៃពុធ ១៥ កើត ខែកត្តិក"),        # Water Festival 2025, full moon
    ("2024-04-13", "ថ្ងៃសៅរ៍ ៥ កើត ខែចេត្រ"),        # Moha Songkran 2024
    ("2025-04-14", "ថ្ងៃចន្ទ ២ រោច ខែចេត្រ"),         # Moha Songkran 2025
]


@pytest.mark.parametrize(("day", "published"), PUBLISHED)
def test_lunar_date_matches_the_published_one(day, published):
    assert lunar.lunar_date(date.fromisoformat(day)).khmer() == published


def test_year_kinds_follow_the_leap_rules():
    # 2004 had both a leap month and a leap day: it keeps the month, 2005 takes the day.
    # 2014 (avoman 137, next 0) is normal; 2012 (bodithey 24, next 6) has the leap month.
    kinds = {ad: lunar.year_kind(ad + 544) for ad in range(2000, 2021)}
    assert [ad for ad, k in kinds.items() if k == "month"] == [2002, 2004, 2007, 2010, 2012, 2015, 2018]
    assert [ad for ad, k in kinds.items() if k == "day"] == [2000, 2005, 2009, 2016, 2020]
    assert lunar.avoman(2014 + 544) == 137 and lunar.avoman(2015 + 544) == 0


def test_a_leap_month_year_has_two_asadh_months_and_every_day_is_counted_once():
    # 2026 is a leap-month year (bodithey 25 or more, or 5 or less): បឋមាសាឍ and ទុតិយាសាឍ.
    seen = [lunar.lunar_date(date(2026, 1, 1).fromordinal(date(2026, 1, 1).toordinal() + i))
            for i in range(365)]
    months = list(dict.fromkeys(d.month for d in seen))
    assert lunar.year_kind(2026 + 544) == "month"
    assert months[months.index(lunar.JESTH) + 1:months.index(lunar.JESTH) + 4] == [
        lunar.ASADH_1, lunar.ASADH_2, lunar.SRAP]
    for a, b in zip(seen, seen[1:], strict=False):
        if a.month == b.month:
            assert (b.day, b.waxing) == ((a.day + 1, True) if a.waxing and a.day < 15 else
                                         (1, False) if a.waxing else (a.day + 1, False))
        else:
            assert (b.day, b.waxing) == (1, True)


def test_english_and_out_of_range():
    assert lunar.lunar_date(date(2024, 5, 22)).english() == "15th waxing day of Pisak"
    assert lunar.lunar_date(date(1899, 12, 31)) is None
