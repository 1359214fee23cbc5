//! Dates as US school exports write them, turned into ISO `YYYY-MM-DD`.

/// `MM/DD/YYYY`, `M/D/YYYY`, `MM-DD-YYYY` or `YYYY-MM-DD` (either separator), as ISO;
/// `None` for anything else, including impossible dates such as `02/30/2012`.
pub fn iso_date(text: &str) -> Option<String> {
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
        _ => return None,
    };
    let (year, month, day): (u32, u32, u32) =
        (year.parse().ok()?, month.parse().ok()?, day.parse().ok()?);
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
    use super::iso_date;

    #[test]
    fn accepted_forms() {
        assert_eq!(iso_date("03/07/2012").as_deref(), Some("2012-03-07"));
        assert_eq!(iso_date("3/7/2012").as_deref(), Some("2012-03-07"));
        assert_eq!(iso_date("2012-03-07").as_deref(), Some("2012-03-07"));
        assert_eq!(iso_date("03-07-2012").as_deref(), Some("2012-03-07"));
        assert_eq!(iso_date(" 02/29/2012 ").as_deref(), Some("2012-02-29"));
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
