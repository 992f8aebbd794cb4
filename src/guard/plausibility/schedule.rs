//! Time-of-day windows in crontab notation: `minute hour day-of-month month day-of-week`.
//!
//! In: a window spec from the configuration, and a Unix time plus a fixed UTC offset. Out:
//! whether that minute lies in the window. Each field takes `*`, a number, a range `a-b`, a
//! step `*/n` or `a-b/n`, or a comma-separated list of those; day-of-week is 0–7 with 0 and 7
//! both Sunday. Unlike cron, **all five fields must match** (cron ORs day-of-month and
//! day-of-week when both are restricted); names (`mon`, `jan`) and `@daily` are not accepted.
//!
//! The notation is parsed here, not by a cron crate: those OR the two day fields, which would
//! widen a window. The calendar (which minute, day and weekday a Unix time falls on) is `time`'s.

use std::fmt;

use time::{OffsetDateTime, UtcOffset};

/// One field: the set of allowed values as a bit mask (values 0..=63).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    bits: u64,
    min: u8,
    max: u8,
}

/// A parse error, naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct WindowError {
    pub field: &'static str,
    pub message: String,
}

const FIELDS: [(&str, u8, u8); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
];

impl Field {
    /// Parses one field with values in `min..=max`.
    pub fn parse(text: &str, min: u8, max: u8) -> Result<Field, String> {
        if text.is_empty() {
            return Err("empty (expected *, a number, a range a-b, a step */n, or a list)".into());
        }
        let mut bits = 0u64;
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => (r, Some(number(s, "step")?)),
                None => (item, None),
            };
            let (lo, hi) = match range {
                "*" => (min, max),
                _ => match range.split_once('-') {
                    Some((a, b)) => (number(a, "value")?, number(b, "value")?),
                    None if step.is_some() => {
                        return Err(format!(
                            "{item:?}: a step needs * or a range before it (e.g. */5, 0-30/5)"
                        ))
                    }
                    None => {
                        let v = number(range, "value")?;
                        (v, v)
                    }
                },
            };
            if lo < min || hi > max || lo > hi {
                return Err(format!(
                    "{item:?} is out of range (expected values {min} to {max}, low before high)"
                ));
            }
            let step = step.unwrap_or(1);
            if step == 0 {
                return Err(format!("{item:?}: step must be at least 1"));
            }
            let mut v = lo;
            while v <= hi {
                bits |= 1 << v;
                v = v.saturating_add(step);
                if v == u8::MAX {
                    break;
                }
            }
        }
        Ok(Field { bits, min, max })
    }

    pub fn contains(self, value: u8) -> bool {
        value < 64 && self.bits & (1 << value) != 0
    }
}

fn number(text: &str, what: &str) -> Result<u8, String> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{text:?} is not a {what} (expected a small decimal number)"
        ));
    }
    text.parse().map_err(|_| format!("{text:?} is too large"))
}

/// Canonical form: `*` when every value is allowed, else a list of ranges.
impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = (self.min..=self.max).all(|v| self.contains(v));
        if all {
            return f.write_str("*");
        }
        let mut first = true;
        let mut v = self.min;
        while v <= self.max {
            if !self.contains(v) {
                v += 1;
                continue;
            }
            let start = v;
            while v < self.max && self.contains(v + 1) {
                v += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == v {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{v}")?;
            }
            v += 1;
        }
        Ok(())
    }
}

/// A five-field window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    fields: [Field; 5],
}

impl Window {
    pub fn parse(spec: &str) -> Result<Window, WindowError> {
        let parts: Vec<&str> = spec.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(WindowError {
                field: "window",
                message: format!(
                    "{spec:?} has {} fields (expected 5: minute hour day-of-month month day-of-week)",
                    parts.len()
                ),
            });
        }
        let mut fields = [Field {
            bits: 0,
            min: 0,
            max: 0,
        }; 5];
        for ((slot, text), (name, min, max)) in fields.iter_mut().zip(&parts).zip(FIELDS) {
            *slot = Field::parse(text, min, max).map_err(|message| WindowError {
                field: name,
                message,
            })?;
        }
        Ok(Window { fields })
    }

    /// Whether the minute containing `unix_secs`, shifted by `offset_secs`, is in the window.
    /// A time beyond what the calendar holds (the years ±9999) lies in no window.
    pub fn matches(&self, unix_secs: i64, offset_secs: i32) -> bool {
        let Some(t) = Civil::at(unix_secs, offset_secs) else {
            return false;
        };
        let [minute, hour, dom, month, dow] = self.fields;
        minute.contains(t.minute)
            && hour.contains(t.hour)
            && dom.contains(t.day)
            && month.contains(t.month)
            && (dow.contains(t.weekday) || (t.weekday == 0 && dow.contains(7)))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e] = self.fields;
        write!(f, "{a} {b} {c} {d} {e}")
    }
}

/// Calendar fields of a Unix time at a UTC offset (proleptic Gregorian, no leap seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    /// 0 = Sunday.
    pub weekday: u8,
}

impl Civil {
    /// The local calendar time of `unix_secs` at `offset_secs` east of UTC; `None` outside the
    /// years ±9999 or for an offset of a day or more.
    pub fn at(unix_secs: i64, offset_secs: i32) -> Option<Civil> {
        let offset = UtcOffset::from_whole_seconds(offset_secs).ok()?;
        let t = OffsetDateTime::from_unix_timestamp(unix_secs)
            .ok()?
            .checked_to_offset(offset)?;
        Some(Civil {
            month: t.month().into(),
            day: t.day(),
            hour: t.hour(),
            minute: t.minute(),
            weekday: t.weekday().number_days_from_sunday(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn civil_time_of_known_instants() {
        // 2024-02-29T13:45:00Z, a Thursday.
        let t = Civil::at(1_709_214_300, 0).unwrap();
        assert_eq!(
            (t.month, t.day, t.hour, t.minute, t.weekday),
            (2, 29, 13, 45, 4)
        );
        // 1969-12-31T23:59:00Z, a Wednesday.
        let t = Civil::at(-60, 0).unwrap();
        assert_eq!(
            (t.month, t.day, t.hour, t.minute, t.weekday),
            (12, 31, 23, 59, 3)
        );
    }

    #[test]
    fn working_hours_window_matches_weekdays_only() {
        let w = Window::parse("* 8-17 * * 1-5").unwrap();
        assert!(w.matches(1_709_214_300, 0)); // Thu 13:45
        assert!(!w.matches(1_709_214_300 + 5 * 3600, 0)); // Thu 18:45
        assert!(!w.matches(1_709_214_300 + 2 * 86_400, 0)); // Sat 13:45
                                                            // With +05:00, Thu 13:45Z is 18:45 local: outside.
        assert!(!w.matches(1_709_214_300, 5 * 3600));
    }

    #[test]
    fn all_fields_must_match_unlike_cron() {
        // Cron would allow every 1st of the month OR every Monday; here only Monday the 1st.
        let w = Window::parse("* * 1 * 1").unwrap();
        assert!(!w.matches(1_709_214_300, 0)); // Thu 29th
        assert!(w.matches(1_704_067_200, 0)); // Mon 2024-01-01
    }

    #[test]
    fn sunday_is_0_and_7() {
        let sunday = 1_709_424_000; // 2024-03-03T00:00Z
        assert!(Window::parse("* * * * 7").unwrap().matches(sunday, 0));
        assert!(Window::parse("* * * * 0").unwrap().matches(sunday, 0));
        assert!(!Window::parse("* * * * 1-6").unwrap().matches(sunday, 0));
    }

    #[test]
    fn lists_ranges_and_steps() {
        let f = Field::parse("*/15", 0, 59).unwrap();
        assert_eq!(f.to_string(), "0,15,30,45");
        let f = Field::parse("1-10/3,20,58-59", 0, 59).unwrap();
        assert_eq!(f.to_string(), "1,4,7,10,20,58-59");
        assert_eq!(Field::parse("0-59", 0, 59).unwrap().to_string(), "*");
        assert_eq!(Field::parse("5-5", 0, 23).unwrap().to_string(), "5");
    }

    #[test]
    fn malformed_fields_are_refused_with_a_reason() {
        for bad in [
            "", "60", "5-1", "*/0", "5/2", "a", "1,,2", "-1", "1-", "*/", "1--2", "9999", "+1",
            " 1",
        ] {
            assert!(Field::parse(bad, 0, 59).is_err(), "{bad:?}");
        }
        assert!(Field::parse("0", 1, 31).is_err());
        let e = Window::parse("* * * *").unwrap_err();
        assert_eq!(e.field, "window");
        let e = Window::parse("* 24 * * *").unwrap_err();
        assert_eq!(e.field, "hour");
    }

    /// The hand-written conversion `Civil::at` replaced, as the oracle it must agree with.
    fn old_civil(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (_, month, day) = crate::guard::civil::civil_from_days(days);
        Civil {
            month: month as u8,
            day: day as u8,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            weekday: (days + 4).rem_euclid(7) as u8,
        }
    }

    proptest! {
        #[test]
        fn calendar_fields_agree_with_the_old_conversion(
            secs in -300_000_000_000i64..250_000_000_000, offset in -14 * 3600..=14 * 3600i32,
        ) {
            prop_assert_eq!(Civil::at(secs, offset), Some(old_civil(secs + i64::from(offset))));
        }

        #[test]
        fn field_parser_never_panics(text in "\\PC{0,24}") {
            let _ = Field::parse(&text, 0, 59);
            let _ = Window::parse(&text);
        }

        #[test]
        fn field_parser_never_panics_on_its_own_alphabet(text in "[0-9*/,-]{0,16}") {
            let _ = Field::parse(&text, 1, 31);
        }

        #[test]
        fn valid_specs_round_trip_through_their_canonical_form(
            items in proptest::collection::vec((0u8..60, 0u8..60, 1u8..20, any::<bool>()), 1..5)
        ) {
            let spec: Vec<String> = items
                .iter()
                .map(|&(a, b, step, ranged)| {
                    let (lo, hi) = (a.min(b), a.max(b));
                    if ranged { format!("{lo}-{hi}/{step}") } else { lo.to_string() }
                })
                .collect();
            let spec = spec.join(",");
            let field = Field::parse(&spec, 0, 59).unwrap();
            let canonical = field.to_string();
            prop_assert_eq!(Field::parse(&canonical, 0, 59).unwrap(), field);
            for &(a, b, step, ranged) in &items {
                let lo = a.min(b);
                prop_assert!(field.contains(lo));
                if ranged {
                    let hi = a.max(b);
                    let last = lo + (hi - lo) / step * step;
                    prop_assert!(field.contains(last));
                }
            }
        }
    }
}
