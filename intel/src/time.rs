//! RFC 3339 timestamps in the form STIX 2.1 uses (§3.2): UTC, `Z`, written
//! and read without a date library (days from the civil date and back, after
//! Howard Hinnant's `days_from_civil` / `civil_from_days`).
//!
//! Internally a time is an `i64` count of milliseconds since the Unix epoch:
//! the precision STIX asks of `created` and `modified`.

/// The earliest time written or read: 0000-01-01T00:00:00.000Z, in ms.
pub(crate) const MIN_MS: i64 = -62_167_219_200_000;
/// The latest time written or read: 9999-12-31T23:59:59.999Z, in ms.
pub(crate) const MAX_MS: i64 = 253_402_300_799_999;

/// Unix seconds rounded to the nearest millisecond, or `None` for a value
/// that is not finite or lies outside the years 0000 to 9999.
pub(crate) fn secs_to_ms(secs: f64) -> Option<i64> {
    if !secs.is_finite() {
        return None;
    }
    let ms = (secs * 1000.0).round();
    if ms < MIN_MS as f64 || ms > MAX_MS as f64 {
        return None;
    }
    Some(ms as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date (year, month, day) of a day count since
/// 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DDTHH:MM:SS.fffZ`: the form of `created` and `modified`.
/// `ms` must lie within [`MIN_MS`], [`MAX_MS`].
pub(crate) fn format_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let secs = in_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        in_day % 1000
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a whole second, else as [`format_ms`]: the
/// form of `valid_from`, `valid_until`, `first_seen` and `last_seen`.
pub(crate) fn format_compact(ms: i64) -> String {
    let mut text = format_ms(ms);
    if ms.rem_euclid(1000) == 0 {
        text.replace_range(19..23, "");
    }
    text
}

/// A timestamp as read: unix seconds and the number of fraction digits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Parsed {
    /// Unix seconds (the fraction kept to the nanosecond).
    pub secs: f64,
    /// Digits after the decimal point (0 when there is no fraction).
    pub fraction_digits: usize,
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.f…]Z` (RFC 3339 in UTC, with the upper-case
/// `T` and `Z` that STIX requires). A leap second (`:60`) is accepted and
/// counts as the first second of the next minute. The error says what is
/// wrong with the text.
pub(crate) fn parse(text: &str) -> Result<Parsed, String> {
    let b = text.as_bytes();
    let shape = "is not an RFC 3339 UTC timestamp (YYYY-MM-DDTHH:MM:SS[.fff]Z)";
    if b.len() < 20 || !text.is_ascii() {
        return Err(shape.into());
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let separators =
        b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':';
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second), true) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
        separators,
    ) else {
        return Err(shape.into());
    };
    let rest = &b[19..];
    let (fraction, tail) = match rest.first() {
        Some(b'.') => {
            let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return Err(format!("{shape}: the decimal point has no digits after it"));
            }
            (&rest[1..=n], &rest[n + 1..])
        }
        _ => (&rest[..0], rest),
    };
    if tail != b"Z" {
        return Err(format!(
            "{shape}: it must end in Z (UTC), without an offset"
        ));
    }
    let year = i64::from(year);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(format!(
            "{shape}: there is no day {year:04}-{month:02}-{day:02}"
        ));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!(
            "{shape}: there is no time of day {hour:02}:{minute:02}:{second:02}"
        ));
    }
    let whole =
        days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    // Nanoseconds from the first nine digits; more are below f64's precision.
    let nanos = fraction
        .iter()
        .chain(std::iter::repeat(&b'0'))
        .take(9)
        .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'));
    Ok(Parsed {
        secs: whole as f64 + f64::from(nanos) / 1e9,
        fraction_digits: fraction.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_four_centuries() {
        for days in (days_from_civil(1800, 1, 1)..days_from_civil(2300, 1, 1)).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn format_and_parse() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_740_830_400_000), "2025-03-01T12:00:00.000Z");
        assert_eq!(format_compact(1_740_830_400_000), "2025-03-01T12:00:00Z");
        assert_eq!(
            format_compact(1_740_830_400_250),
            "2025-03-01T12:00:00.250Z"
        );
        assert_eq!(format_ms(MIN_MS), "0000-01-01T00:00:00.000Z");
        assert_eq!(format_ms(MAX_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_ms(-1), "1969-12-31T23:59:59.999Z");
        let p = parse("2025-03-01T12:00:00.000Z").unwrap();
        assert_eq!(
            p,
            Parsed {
                secs: 1_740_830_400.0,
                fraction_digits: 3
            }
        );
        let p = parse("2024-02-29T23:59:59.123456Z").unwrap();
        assert_eq!(p.fraction_digits, 6);
        assert!((p.secs - 1_709_251_199.123_456).abs() < 1e-6);
        assert_eq!(parse("2016-12-31T23:59:60Z").unwrap().secs, 1_483_228_800.0);
        assert_eq!(
            parse(&format_ms(MIN_MS)).unwrap().secs,
            MIN_MS as f64 / 1000.0
        );
        assert_eq!(secs_to_ms(1.0005), Some(1001));
        assert_eq!(secs_to_ms(f64::NAN), None);
        assert_eq!(secs_to_ms(1e300), None);
    }

    #[test]
    fn malformed_timestamps() {
        for (bad, why) in [
            ("2025-03-01", "RFC 3339"),
            ("2025-03-01 12:00:00Z", "RFC 3339"),
            ("2025-03-01t12:00:00Z", "RFC 3339"),
            ("2025-03-01T12:00:00", "RFC 3339"),
            ("2025-03-01T12:00:00+00:00", "must end in Z"),
            ("2025-03-01T12:00:00.Z", "no digits"),
            ("2025-02-29T12:00:00Z", "no day 2025-02-29"),
            ("2025-13-01T12:00:00Z", "no day"),
            ("2025-03-01T24:00:00Z", "no time of day"),
            ("2025-03-01T12:00:00.000ZZ", "must end in Z"),
            ("２025-03-01T12:00:00Z", "RFC 3339"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
