//! oneM2M timestamps (TS-0004 `m2m:timestamp`, ISO 8601 basic form in UTC): `YYYYMMDDTHHMMSS`,
//! optionally followed by `,` and a decimal fraction, as sent in `ot`.
//!
//! In: the text of a timestamp, or Unix seconds. Out: Unix seconds, or the text. The calendar
//! (month lengths, leap years, days since the epoch, and the formatting) is the `time` crate's;
//! what is read here is only the fixed shape around it: exactly 15 ASCII characters, digits
//! with `T` in the middle; a fraction of any length (ignored: the replay window counts whole
//! seconds); second `60` (an ISO 8601 leap second, which `time` refuses) read as the next
//! minute's first second. Before 1970 is refused: `ot` is compared with Unix time.
//!
//! `ot` is read on the request path of every request that carries one, so the fixed-width form
//! is read directly: once the shape is checked every field is two digits at a known place, the
//! date goes to `time` as numbers ([`Date::from_calendar_date`], whose Julian day gives the days
//! since the epoch), and the time of day is three range checks and a sum. Neither a format
//! description (its parser takes three times as long) nor a `PrimitiveDateTime` is built.

use time::format_description::BorrowedFormatItem;
use time::macros::{date, format_description};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The whole timestamp, as written.
const FORMAT: &[BorrowedFormatItem<'_>] =
    format_description!("[year][month][day]T[hour][minute][second]");

/// Length of `YYYYMMDDTHHMMSS`.
const LEN: usize = 15;

/// The Julian day of 1970-01-01: Unix time's day 0.
const EPOCH_DAY: i32 = date!(1970 - 01 - 01).to_julian_day();

/// `YYYYMMDDTHHMMSS`, optionally `,fraction`, UTC → Unix seconds; `None` if malformed or
/// before 1970.
pub fn parse_ot(text: &str) -> Option<u64> {
    // The fraction starts right after the 15 characters, or there is none.
    let (main, fraction) = match text.as_bytes().get(LEN) {
        None => (text, "0"),
        Some(b',') => (&text[..LEN], &text[LEN + 1..]),
        Some(_) => return None,
    };
    if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let b = shaped(main)?;
    // Two digits at `i` as a number: every place but the `T` holds a digit.
    let two = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
    let year = i32::from(two(0)) * 100 + i32::from(two(2));
    let date = Date::from_calendar_date(year, Month::try_from(two(4)).ok()?, two(6)).ok()?;
    let (hour, minute, second) = (two(9), two(11), two(13));
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = u64::try_from(date.to_julian_day() - EPOCH_DAY).ok()?;
    Some(days * 86_400 + u64::from(hour) * 3600 + u64::from(minute) * 60 + u64::from(second))
}

/// Unix seconds → `YYYYMMDDTHHMMSS` (UTC). Past the year 9999 (which the form cannot hold) it
/// saturates to `99991231T235959`.
pub fn format_ot(secs: u64) -> String {
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(PrimitiveDateTime::MAX.assume_offset(UtcOffset::UTC));
    at.format(FORMAT).unwrap_or_default()
}

/// The 15 bytes of `main` if they are eight digits, `T`, six digits.
fn shaped(main: &str) -> Option<&[u8; LEN]> {
    let b: &[u8; LEN] = main.as_bytes().try_into().ok()?;
    let digits_around_t = b.iter().enumerate().all(|(i, c)| {
        if i == 8 {
            *c == b'T'
        } else {
            c.is_ascii_digit()
        }
    });
    digits_around_t.then_some(b)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The hand-written implementation this module replaced (its calendar now in
    /// [`crate::guard::civil`]), kept as the oracle that the new one accepts and refuses exactly
    /// the same texts.
    mod old {
        use crate::guard::civil::{civil_from_days, days_from_civil};

        pub fn parse_ot(text: &str) -> Option<u64> {
            let (main, fraction) = text.split_once(',').unwrap_or((text, "0"));
            if main.len() != 15 || main.as_bytes()[8] != b'T' || fraction.is_empty() {
                return None;
            }
            if !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let num = |range: std::ops::Range<usize>| -> Option<u64> {
                let s = main.get(range)?;
                s.bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| s.parse().ok())?
            };
            let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
            let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
            if !(1..=12).contains(&mo)
                || d == 0
                || d > days_in_month(y, mo)
                || h > 23
                || mi > 59
                || s > 60
            {
                return None;
            }
            let days = days_from_civil(y as i64, mo as i64, d as i64);
            Some(u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + s)
        }

        pub fn format_ot(secs: u64) -> String {
            let (days, rem) = (secs / 86_400, secs % 86_400);
            let (y, m, d) = civil_from_days(days as i64);
            format!(
                "{y:04}{m:02}{d:02}T{:02}{:02}{:02}",
                rem / 3600,
                rem / 60 % 60,
                rem % 60
            )
        }

        fn days_in_month(y: u64, m: u64) -> u64 {
            match m {
                2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            }
        }
    }

    /// The last second the form can hold: 9999-12-31T23:59:59Z.
    const LAST: u64 = 253_402_300_799;

    #[test]
    fn leap_seconds_fractions_and_the_edges_of_the_range() {
        for text in [
            "19700101T000000",
            "19700101T000060",
            "20161231T235960",
            "20000229T235959,5",
            "20261128T120000,000000000000123",
            "99991231T235959",
            "99991231T235960",
        ] {
            assert_eq!(parse_ot(text), old::parse_ot(text), "{text}");
            assert!(parse_ot(text).is_some(), "{text}");
        }
        assert_eq!(parse_ot("20161231T235960"), parse_ot("20170101T000000"));
        assert_eq!(format_ot(0), "19700101T000000");
        assert_eq!(format_ot(LAST), "99991231T235959");
        assert_eq!(format_ot(LAST + 1), "99991231T235959", "saturates");
        assert_eq!(format_ot(u64::MAX), "99991231T235959");
        for bad in [
            "19000229T000000",
            "21000229T000000",
            "00000101T000000",
            "2026112８T120000",
            "+0261128T120000",
            "20261128t120000",
            "20261128T120061",
            "20261128T126000",
            "20261301T000000",
            "20261100T000000",
            "20261128T120000,5,5",
            "20261128T120000,-5",
            "20261128T120000Z",
        ] {
            assert_eq!(parse_ot(bad), None, "{bad}");
            assert_eq!(old::parse_ot(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn formatting_round_trips_and_matches_the_old_formatter(secs in 0..=LAST) {
            let text = format_ot(secs);
            prop_assert_eq!(&text, &old::format_ot(secs));
            prop_assert_eq!(parse_ot(&text), Some(secs));
        }

        #[test]
        fn fields_in_and_out_of_range_are_judged_as_before(
            y in 0u32..10_000, mo in 0u32..14, d in 0u32..33,
            h in 0u32..26, mi in 0u32..62, s in 0u32..63,
            fraction in proptest::option::of("[0-9]{0,12}"),
        ) {
            let mut text = format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}");
            if let Some(f) = fraction {
                text = format!("{text},{f}");
            }
            prop_assert_eq!(parse_ot(&text), old::parse_ot(&text), "{}", text);
        }

        #[test]
        fn any_text_of_the_right_alphabet_is_judged_as_before(text in "[0-9T,+ -]{0,20}") {
            prop_assert_eq!(parse_ot(&text), old::parse_ot(&text), "{}", text);
        }

        #[test]
        fn any_text_at_all_is_judged_as_before(text in "\\PC{0,24}") {
            prop_assert_eq!(parse_ot(&text), old::parse_ot(&text), "{}", text);
        }

        #[test]
        fn a_valid_timestamp_with_one_character_changed_is_judged_as_before(
            secs in 0..=LAST, at in 0usize..15, c in proptest::char::any(),
        ) {
            let mut chars: Vec<char> = format_ot(secs).chars().collect();
            chars[at] = c;
            let text: String = chars.into_iter().collect();
            prop_assert_eq!(parse_ot(&text), old::parse_ot(&text), "{}", text);
        }
    }
}
