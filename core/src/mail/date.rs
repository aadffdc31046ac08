//! Dates and date-times of messages (internal dates, SEARCH dates), and calendar arithmetic for
//! them (civil-from-days, Howard Hinnant's algorithm).

/// A calendar date as in SEARCH keys: `date-day "-" date-month "-" date-year`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Four-digit year.
    pub year: u16,
    /// 1–12.
    pub month: u8,
    /// 1–31 (validated against the month).
    pub day: u8,
}

/// `date-time` of APPEND and INTERNALDATE: `"dd-Mon-yyyy hh:mm:ss +zzzz"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DateTime {
    /// The date.
    pub date: Date,
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
    /// 0–60 (a leap second is allowed).
    pub second: u8,
    /// Offset from UTC in minutes, −1439 … +1439.
    pub zone_minutes: i16,
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(date: Date) -> i64 {
    let y = i64::from(date.year) - i64::from(date.month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(date.month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(date.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number.
pub fn civil_from_days(days: i64) -> Date {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
    Date { year, month, day }
}

/// Seconds since the Unix epoch of a date-time with its zone.
pub fn to_unix(dt: &DateTime) -> i64 {
    days_from_civil(dt.date) * 86_400
        + i64::from(dt.hour) * 3600
        + i64::from(dt.minute) * 60
        + i64::from(dt.second)
        - i64::from(dt.zone_minutes) * 60
}

/// The date-time of a Unix time, shown in the given zone.
pub fn from_unix(secs: i64, zone_minutes: i16) -> DateTime {
    let local = secs + i64::from(zone_minutes) * 60;
    let days = local.div_euclid(86_400);
    let rem = local.rem_euclid(86_400);
    DateTime {
        date: civil_from_days(days),
        hour: (rem / 3600) as u8,
        minute: (rem % 3600 / 60) as u8,
        second: (rem % 60) as u8,
        zone_minutes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let d = Date {
            year: 2026,
            month: 11,
            day: 26,
        };
        assert_eq!(civil_from_days(days_from_civil(d)), d);
        assert_eq!(
            days_from_civil(Date {
                year: 1970,
                month: 1,
                day: 1
            }),
            0
        );
        let dt = from_unix(1_700_000_000, 60);
        assert_eq!(to_unix(&dt), 1_700_000_000);
        assert_eq!(dt.hour, 23);
        for days in [-1000, 0, 59, 60, 365 * 400, 20_000] {
            assert_eq!(days_from_civil(civil_from_days(days)), days);
        }
    }
}
