//! The ISO-8601 pieces the Metrics API reads and writes: RFC 3339 instants
//! (`2026-11-22T10:00:00Z`, `...T10:00:00.5+01:00`), durations (`PT1H`, `P1DT30M`, `P1W`),
//! intervals (`start/end`, `start/duration`, `duration/end`), and instants written back
//! to the nearest second in UTC. All times are Unix milliseconds.

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str, n: usize) -> Option<i64> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// An RFC 3339 instant with a `Z` or `±HH:MM` offset, in Unix milliseconds.
pub fn parse_instant(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once(['T', 't'])?;
    let mut d = date.split('-');
    let (y, mo, da) = (
        digits(d.next()?, 4)?,
        digits(d.next()?, 2)?,
        digits(d.next()?, 2)?,
    );
    if d.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return None;
    }
    let (clock, offset_ms) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (c, off) = rest.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':')?;
        let (h, m) = (digits(h, 2)?, digits(m, 2)?);
        if h > 23 || m > 59 {
            return None;
        }
        (c, sign * (h * 3600 + m * 60) * 1000)
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    let mut t = hms.split(':');
    let (h, mi, sec) = (
        digits(t.next()?, 2)?,
        digits(t.next()?, 2)?,
        digits(t.next()?, 2)?,
    );
    if t.next().is_some() || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let ms = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<3}")[..3].parse::<i64>().ok()?
        }
        Some(_) => return None,
    };
    let days = days_from_civil(y, mo, da);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    Some(secs * 1000 + ms - offset_ms)
}

/// An ISO-8601 duration of weeks, days, hours, minutes and seconds (no years or months:
/// their length varies), in milliseconds; at least one part, whole numbers only.
pub fn parse_duration(s: &str) -> Option<i64> {
    let rest = s.strip_prefix(['P', 'p'])?;
    let (date, time) = match rest.split_once(['T', 't']) {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut total: i64 = 0;
    let mut parts = 0;
    let mut add = |section: &str, units: &[(char, i64)]| -> Option<()> {
        let mut number = String::new();
        let mut next_unit = 0;
        for c in section.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let at = units[next_unit..]
                .iter()
                .position(|(u, _)| u.eq_ignore_ascii_case(&c))?;
            let (_, ms) = units[next_unit + at];
            next_unit += at + 1;
            let n: i64 = number.parse().ok()?;
            total = total.checked_add(n.checked_mul(ms)?)?;
            number.clear();
            parts += 1;
        }
        number.is_empty().then_some(())
    };
    add(date, &[('W', 7 * 86_400_000), ('D', 86_400_000)])?;
    if let Some(t) = time {
        add(t, &[('H', 3_600_000), ('M', 60_000), ('S', 1000)])?;
    }
    (parts > 0).then_some(total)
}

/// `start/end`, `start/duration` or `duration/end` as `[start, end)` in milliseconds.
pub fn parse_interval(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('/')?;
    let (start, end) = if a.starts_with(['P', 'p']) {
        let end = parse_instant(b)?;
        (end.checked_sub(parse_duration(a)?)?, end)
    } else {
        let start = parse_instant(a)?;
        let end = if b.starts_with(['P', 'p']) {
            start.checked_add(parse_duration(b)?)?
        } else {
            parse_instant(b)?
        };
        (start, end)
    };
    Some((start, end))
}

/// Unix milliseconds as `2026-11-22T10:00:00Z` (to the second, as Confluent writes them).
pub fn format_instant(ms: i64) -> String {
    let full = crate::util::rfc3339_millis(ms.div_euclid(1000) * 1000);
    full.replace(".000Z", "Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_341_600_000; // 2026-11-22T10:00:00Z

    #[test]
    fn instants() {
        assert_eq!(parse_instant("2026-11-22T10:00:00Z"), Some(T));
        assert_eq!(parse_instant("2026-11-22T11:00:00+01:00"), Some(T));
        assert_eq!(parse_instant("2026-11-22T05:30:00-04:30"), Some(T));
        assert_eq!(parse_instant("2026-11-22T10:00:00.25Z"), Some(T + 250));
        assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(format_instant(T + 999), "2026-11-22T10:00:00Z");
        for bad in [
            "",
            "2026-11-22",
            "2026-11-22T10:00:00",
            "2026-13-01T00:00:00Z",
            "2026-11-22T25:00:00Z",
            "2026-11-22T10:00Z",
            "26-11-22T10:00:00Z",
            "2026-11-22T10:00:00.Z",
            "2026-11-22T10:00:00+1:00",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_and_intervals() {
        assert_eq!(parse_duration("PT1M"), Some(60_000));
        assert_eq!(parse_duration("PT1H30M"), Some(5_400_000));
        assert_eq!(parse_duration("P1D"), Some(86_400_000));
        assert_eq!(parse_duration("P1W"), Some(7 * 86_400_000));
        assert_eq!(parse_duration("P1DT2H"), Some(93_600_000));
        for bad in ["", "P", "PT", "1H", "PT1", "PTH", "P1M", "PT1M1H", "P1Y"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        let hour = 3_600_000;
        assert_eq!(
            parse_interval("2026-11-22T10:00:00Z/PT1H"),
            Some((T, T + hour))
        );
        assert_eq!(
            parse_interval("2026-11-22T10:00:00Z/2026-11-22T11:00:00Z"),
            Some((T, T + hour))
        );
        assert_eq!(
            parse_interval("PT1H/2026-11-22T11:00:00Z"),
            Some((T, T + hour))
        );
        assert_eq!(parse_interval("2026-11-22T10:00:00Z"), None);
        assert_eq!(parse_interval("PT1H/PT1H"), None);
    }
}
