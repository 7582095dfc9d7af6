"""Income lines by year and province: the monitoring line a policy file sets, as a table.

The 2021 guidance lets each province adjust the line yearly (DOMAIN.md): a policy keeps the rows
it knows (national, or one province's) and `policy.Policy.line_on` reads the one in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True, slots=True)
class IncomeLine:
    """The monitoring line set for a year: nationally (`province` None) or by one province."""

    year: int
    yuan: int
    province: str | None = None

    def describe(self) -> str:
        return f"{self.province} {self.year}" if self.province else str(self.year)


def whole(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def parse_income_lines(
    income: Any, effective_from: Any, province: str | None, problems: list[tuple[str, str]]
) -> tuple[IncomeLine, ...]:
    """`income.line_yuan` (one line for every year) or `[[income.lines]]` (`year`, `yuan`,
    optional `province`): exactly one of them, covering the version's first year."""
    if not isinstance(income, dict):
        return ()
    single, table = income.get("line_yuan"), income.get("lines")
    if (single is None) == (table is None):
        problems.append(("income.lines", "give either line_yuan or [[income.lines]], not both"
                         if single is not None else "missing (or line_yuan)"))  # fmt: skip
        return ()
    first_year = effective_from.year if isinstance(effective_from, date) else None
    if single is not None:
        if not whole(single, 1):
            problems.append(("income.line_yuan", f"expected a whole number > 0, got {single!r}"))
            return ()
        return (IncomeLine(first_year or 1, single),)
    if not isinstance(table, list) or not table:
        problems.append(("income.lines", "expected one [[income.lines]] table or more"))
        return ()
    lines: list[IncomeLine] = []
    for i, entry in enumerate(table):
        where = f"income.lines[{i}]"
        if not isinstance(entry, dict):
            problems.append((where, "expected a table"))
            continue
        problems += [(f"{where}.{k}", "unknown key") for k in entry if k not in LINE_KEYS]
        year, yuan, region = entry.get("year"), entry.get("yuan"), entry.get("province")
        if not whole(year, 1):
            problems.append((f"{where}.year", f"expected a year, got {year!r}"))
        if not whole(yuan, 1):
            problems.append((f"{where}.yuan", f"expected a whole number > 0, got {yuan!r}"))
        if region is not None and (not isinstance(region, str) or not region.strip()):
            problems.append((f"{where}.province", f"expected a province's name, got {region!r}"))
        if whole(year, 1) and whole(yuan, 1):
            lines.append(IncomeLine(year, yuan, region if isinstance(region, str) else None))
    keys = [(line.year, line.province) for line in lines]
    problems += [
        ("income.lines", f"{year} {region or 'national'} appears twice")
        for year, region in sorted(set(keys), key=str)
        if keys.count((year, region)) > 1
    ]
    ours = [line for line in lines if line.province in (None, province)]
    if lines and first_year is not None and not any(line.year <= first_year for line in ours):
        problems.append(
            ("income.lines", f"no line for {first_year} (effective_from) nationally"
             + (f" or for {province}" if province else ""))
        )  # fmt: skip
    return tuple(lines)


LINE_KEYS = ("year", "yuan", "province")
