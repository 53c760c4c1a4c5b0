"""Reference data every NetSuite account starts with, and per-country tax registration formats.

Subsidiaries, currencies and terms are account setup in NetSuite, not records an integration creates:
a fresh sandbox tenant has them (ids as a standard OneWorld demo account numbers them). Tax
registration numbers are checked by format per country (no check digits; see `TAX_FORMATS`).
"""

from __future__ import annotations

import re
from typing import Any

from faker.providers.address import Provider as _AddressProvider

__all__ = [
    "COUNTRIES",
    "CURRENCIES",
    "SUBSIDIARIES",
    "TAX_FORMATS",
    "TERMS",
    "normalize_tax_number",
]

# internal id -> record. Plain dicts; copied into each tenant's state so a tenant may add its own.
CURRENCIES: dict[str, dict[str, Any]] = {
    "1": {"id": "1", "symbol": "USD", "name": "US Dollar"},
    "2": {"id": "2", "symbol": "GBP", "name": "British pound"},
    "3": {"id": "3", "symbol": "CAD", "name": "Canadian Dollar"},
    "4": {"id": "4", "symbol": "EUR", "name": "Euro"},
    "5": {"id": "5", "symbol": "AUD", "name": "Australian Dollar"},
}

SUBSIDIARIES: dict[str, dict[str, Any]] = {
    "1": {"id": "1", "name": "Parent Company", "country": "US", "currency": "1"},
    "2": {"id": "2", "name": "UK Subsidiary", "country": "GB", "currency": "2"},
    "3": {"id": "3", "name": "DE Subsidiary", "country": "DE", "currency": "4"},
    "4": {"id": "4", "name": "Canada Subsidiary", "country": "CA", "currency": "3"},
    "5": {"id": "5", "name": "Australia Subsidiary", "country": "AU", "currency": "5"},
}

TERMS: dict[str, dict[str, Any]] = {
    "1": {"id": "1", "name": "1% 10 Net 30", "days": 30},
    "2": {"id": "2", "name": "2% 10 Net 30", "days": 30},
    "3": {"id": "3", "name": "Due on receipt", "days": 0},
    "4": {"id": "4", "name": "Net 15", "days": 15},
    "5": {"id": "5", "name": "Net 30", "days": 30},
    "6": {"id": "6", "name": "Net 60", "days": 60},
}

COUNTRIES: frozenset[str] = frozenset(_AddressProvider.alpha_2_country_codes) | {
    "HK", "TW", "PR", "GI", "JE", "GG", "IM", "GL", "FO", "AW", "CW", "BM", "KY", "VG", "RE", "GP", "MQ",
    "NC", "PF", "MO", "XK", "PS", "EH", "AX", "AS", "GU", "VI", "MP",
}

# country -> (wire prefix to prepend when missing, compiled pattern over the normalized number, hint).
# Normalizing strips spaces, dots and hyphens and upper-cases; the US EIN is re-hyphenated NN-NNNNNNN.
TAX_FORMATS: dict[str, tuple[str, re.Pattern[str], str]] = {
    "GB": ("GB", re.compile(r"GB(\d{9}|\d{12}|GD[0-4]\d{2}|HA[5-9]\d{2})"), "GB + 9 or 12 digits"),
    "DE": ("DE", re.compile(r"DE\d{9}"), "DE + 9 digits"),
    "FR": ("FR", re.compile(r"FR[0-9A-HJ-NP-Z]{2}\d{9}"), "FR + 2 characters + 9 digits"),
    "IE": ("IE", re.compile(r"IE(\d{7}[A-W][A-IW]?|\d[A-Z+*]\d{5}[A-W])"), "IE + 7 digits + 1 or 2 letters"),
    "NL": ("NL", re.compile(r"NL\d{9}B\d{2}"), "NL + 9 digits + B + 2 digits"),
    "BE": ("BE", re.compile(r"BE[01]\d{9}"), "BE + 0 or 1 + 9 digits"),
    "ES": ("ES", re.compile(r"ES[A-Z0-9]\d{7}[A-Z0-9]"), "ES + 9 characters"),
    "IT": ("IT", re.compile(r"IT\d{11}"), "IT + 11 digits"),
    "AT": ("AT", re.compile(r"ATU\d{8}"), "ATU + 8 digits"),
    "SE": ("SE", re.compile(r"SE\d{10}01"), "SE + 10 digits + 01"),
    "DK": ("DK", re.compile(r"DK\d{8}"), "DK + 8 digits"),
    "PL": ("PL", re.compile(r"PL\d{10}"), "PL + 10 digits"),
    "CH": ("", re.compile(r"CHE\d{9}(MWST|TVA|IVA)?"), "CHE + 9 digits"),
    "US": ("", re.compile(r"\d{2}-\d{7}"), "EIN: 9 digits, NN-NNNNNNN"),
    "CA": ("", re.compile(r"\d{9}(RT\d{4})?"), "business number: 9 digits (+ RT + 4 digits)"),
    "AU": ("", re.compile(r"\d{11}"), "ABN: 11 digits"),
    "JP": ("", re.compile(r"T\d{13}"), "T + 13 digits"),
}

_STRIP = re.compile(r"[\s.\-/]")


def normalize_tax_number(country: str, number: str) -> str:
    """The registration number in canonical form; ValueError saying the expected format when invalid.

    Countries without a declared format accept any 4-20 letters and digits.
    """
    compact = _STRIP.sub("", number).upper()
    spec = TAX_FORMATS.get(country)
    if spec is None:
        if not re.fullmatch(r"[A-Z0-9]{4,20}", compact):
            raise ValueError(f"Invalid tax registration number for {country}: 4 to 20 letters and digits.")
        return compact
    prefix, pattern, hint = spec
    if country == "US" and re.fullmatch(r"\d{9}", compact):
        compact = f"{compact[:2]}-{compact[2:]}"
    elif prefix and not compact.startswith(prefix) and compact[:2].isdigit():
        compact = prefix + compact
    if not pattern.fullmatch(compact):
        raise ValueError(f"Invalid tax registration number {number!r} for {country}: expected {hint}.")
    return compact
