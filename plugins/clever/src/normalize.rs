//! Lenient readings of Clever's loosely validated values (NOTES §10): dates in three
//! formats, `"Y"`/`"N"` booleans, and error bodies that may be JSON or HTML.

/// `YYYY-MM-DD` for the date formats Clever is seen to send — `2015-02-11`,
/// `2015-02-11T00:00:00.000Z` and the spec's `M/D/YYYY` — or `None` when `raw` is none of
/// them or not a real calendar date.
pub fn iso_date(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let (year, month, day) = if let Some((m, rest)) = raw.split_once('/') {
        let (d, y) = rest.split_once('/')?;
        (number(y, 4, 4)?, number(m, 1, 2)?, number(d, 1, 2)?)
    } else {
        // Date part of an ISO date or date-time; the time of day carries no meaning here.
        let date = raw.split(['T', ' ']).next()?;
        let mut parts = date.splitn(3, '-');
        let y = number(parts.next()?, 4, 4)?;
        let m = number(parts.next()?, 2, 2)?;
        let d = number(parts.next()?, 2, 2)?;
        (y, m, d)
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

fn number(text: &str, min_len: usize, max_len: usize) -> Option<u32> {
    let ok = (min_len..=max_len).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| text.parse().ok()).flatten()
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// A date as the record model wants it: ISO when parseable, else the raw text. The second
/// value is the raw text when it differs from the first, for `attributes`.
pub fn date_field(raw: Option<&str>) -> (Option<String>, Option<String>) {
    match raw {
        None => (None, None),
        Some(raw) => match iso_date(raw) {
            Some(iso) if iso == raw => (Some(iso), None),
            Some(iso) => (Some(iso), Some(raw.to_string())),
            None => (Some(raw.to_string()), Some(raw.to_string())),
        },
    }
}

/// Clever's string booleans (`"Y"`/`"N"`, sometimes spelled out) as `"true"`/`"false"`;
/// any other non-empty value is passed through unchanged.
pub fn yes_no(raw: &str) -> Option<String> {
    let raw = raw.trim();
    match raw.to_ascii_lowercase().as_str() {
        "" => None,
        "y" | "yes" | "true" => Some("true".into()),
        "n" | "no" | "false" => Some("false".into()),
        _ => Some(raw.to_string()),
    }
}

/// Up to `max` characters of what an error body says: the `message`/`error` field of a
/// JSON body, or the text of an HTML page with its tags stripped.
pub fn error_excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let said = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|json| {
            ["message", "error", "error_description"]
                .iter()
                .find_map(|key| json.get(key).and_then(|v| v.as_str()).map(str::to_string))
        })
        .unwrap_or_else(|| strip_tags(&text));
    let collapsed = said.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() > max {
        let cut: String = collapsed.chars().take(max).collect();
        format!("{cut}…")
    } else {
        collapsed
    }
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_dob_formats() {
        assert_eq!(iso_date("2/11/2007").as_deref(), Some("2007-02-11"));
        assert_eq!(iso_date("12/1/2010").as_deref(), Some("2010-12-01"));
        assert_eq!(iso_date("2000-05-21").as_deref(), Some("2000-05-21"));
        assert_eq!(
            iso_date("2000-05-21T00:00:00.000Z").as_deref(),
            Some("2000-05-21")
        );
    }

    #[test]
    fn refuses_impossible_dates() {
        for raw in [
            "00/00/0000",
            "2/30/2015",
            "2015-13-01",
            "",
            "Spring 2014",
            "2015-2-1",
            "1/1/15",
        ] {
            assert_eq!(iso_date(raw), None, "{raw}");
        }
        assert_eq!(iso_date("2/29/2016").as_deref(), Some("2016-02-29"));
        assert_eq!(iso_date("2/29/1900"), None);
    }

    #[test]
    fn date_field_keeps_raw_when_it_differs() {
        assert_eq!(
            date_field(Some("2015-02-11")),
            (Some("2015-02-11".into()), None)
        );
        assert_eq!(
            date_field(Some("2/11/2015")),
            (Some("2015-02-11".into()), Some("2/11/2015".into()))
        );
        assert_eq!(
            date_field(Some("00/00/0000")),
            (Some("00/00/0000".into()), Some("00/00/0000".into()))
        );
    }

    #[test]
    fn yes_no_is_lenient() {
        assert_eq!(yes_no("Y").as_deref(), Some("true"));
        assert_eq!(yes_no("n").as_deref(), Some("false"));
        assert_eq!(yes_no(""), None);
        assert_eq!(yes_no("Unknown").as_deref(), Some("Unknown"));
    }

    #[test]
    fn excerpts_json_and_html_bodies() {
        assert_eq!(
            error_excerpt(br#"{"message":"bad limit"}"#, 200),
            "bad limit"
        );
        assert_eq!(
            error_excerpt(br#"{"error":"invalid_token"}"#, 200),
            "invalid_token"
        );
        let html = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>";
        assert_eq!(error_excerpt(html, 200), "502 Bad Gateway 502 Bad Gateway");
        let long = "x".repeat(500);
        assert_eq!(error_excerpt(long.as_bytes(), 200).chars().count(), 201);
    }
}
