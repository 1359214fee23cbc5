//! Dates as US school exports write them, turned into ISO `YYYY-MM-DD`.

/// `MM/DD/YYYY`, `M/D/YYYY`, `MM-DD-YYYY` or `YYYY-MM-DD` (either separator), as ISO;
/// `None` for anything else, including impossible dates such as `02/30/2012`.
pub fn iso_date(text: &str) -> Option<String> {
    parse(text, None)
}

/// Like [`iso_date`], and also `M/D/YY` (or `MM-DD-YY`) with a two-digit year, read as
/// the latest year ending in those digits that is not after `latest_year`: with 2026,
/// `12` is 2012 and `27` is 1927. Callers pick `latest_year` per field: the current year
/// for a birth date (nobody is born in the future), a few years ahead for term dates.
pub fn iso_date_pivot(text: &str, latest_year: u32) -> Option<String> {
    parse(text, Some(latest_year))
}

/// The calendar year now (UTC), for [`iso_date_pivot`].
pub fn current_year() -> u32 {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Howard Hinnant's civil_from_days, for the year only.
    let z = (seconds / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let year = yoe + era * 400 + i64::from(mp >= 10);
    u32::try_from(year).unwrap_or(1970)
}

fn parse(text: &str, two_digit_latest: Option<u32>) -> Option<String> {
    let text = text.trim();
    let separator = if text.contains('/') { '/' } else { '-' };
    let parts: Vec<&str> = text.split(separator).collect();
    let [a, b, c] = parts[..] else {
        return None;
    };
    if ![a, b, c]
        .iter()
        .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let (year, month, day) = match (a.len(), c.len()) {
        (4, 1..=2) if b.len() <= 2 => (a, b, c),
        (1..=2, 4) if b.len() <= 2 => (c, a, b),
        (1..=2, 2) if b.len() <= 2 && two_digit_latest.is_some() => (c, a, b),
        _ => return None,
    };
    let two_digits = year.len() == 2;
    let (mut year, month, day): (u32, u32, u32) =
        (year.parse().ok()?, month.parse().ok()?, day.parse().ok()?);
    if let (Some(latest), true) = (two_digit_latest, two_digits) {
        year += latest / 100 * 100;
        if year > latest {
            year -= 100;
        }
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (year >= 1000 && (1..=days).contains(&day)).then(|| format!("{year:04}-{month:02}-{day:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(iso_date("03/07/2012").as_deref(), Some("2012-03-07"));
        assert_eq!(iso_date("3/7/2012").as_deref(), Some("2012-03-07"));
        assert_eq!(iso_date("2012-03-07").as_deref(), Some("2012-03-07"));
        assert_eq!(iso_date("03-07-2012").as_deref(), Some("2012-03-07"));
        assert_eq!(iso_date(" 02/29/2012 ").as_deref(), Some("2012-02-29"));
    }

    #[test]
    fn two_digit_years_pivot() {
        assert_eq!(
            iso_date_pivot("3/7/12", 2026).as_deref(),
            Some("2012-03-07")
        );
        assert_eq!(
            iso_date_pivot("03-07-26", 2026).as_deref(),
            Some("2026-03-07")
        );
        assert_eq!(
            iso_date_pivot("3/7/27", 2026).as_deref(),
            Some("1927-03-07")
        );
        assert_eq!(
            iso_date_pivot("1/19/27", 2036).as_deref(),
            Some("2027-01-19")
        );
        assert_eq!(
            iso_date_pivot("2/29/00", 2026).as_deref(),
            Some("2000-02-29")
        );
        assert_eq!(
            iso_date_pivot("03/07/2012", 2026).as_deref(),
            Some("2012-03-07")
        );
        assert_eq!(
            iso_date_pivot("2012-03-07", 2026).as_deref(),
            Some("2012-03-07")
        );
        assert_eq!(iso_date_pivot("2/30/12", 2026), None);
        assert_eq!(iso_date("3/7/12"), None);
    }

    #[test]
    fn the_current_year_is_plausible() {
        let year = current_year();
        assert!((2025..2200).contains(&year), "{year}");
    }

    #[test]
    fn rejected_forms() {
        for text in [
            "4821",
            "",
            "02/30/2012",
            "13/01/2012",
            "02/29/2013",
            "2012/3",
            "ab/cd/efgh",
            "1/2/12",
            "0/1/2012",
        ] {
            assert_eq!(iso_date(text), None, "{text}");
        }
    }
}
