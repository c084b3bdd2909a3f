//! Units of gateway.toml: durations (`"30s"`, `"15m"`, `"7d"`) and rates (`"100/s"`).

use std::time::Duration;

/// Parses `"<n><unit>"` with unit `ms`, `s`, `m`, `h` or `d`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("duration `{s}` needs a unit (ms, s, m, h, d)"))?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("duration `{s}` must start with a whole number"))?;
    let secs_per = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "duration `{s}`: unknown unit `{unit}` (ms, s, m, h, d)"
            ))
        }
    };
    n.checked_mul(secs_per)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration `{s}` is too large"))
}

/// A rate as written: `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    /// The time one request's allowance takes to come back: `per / count`.
    pub fn interval(&self) -> Duration {
        self.per / self.count
    }
}

/// Parses `"<n>/<unit>"` with unit `s`, `min`, `h` or `d`; `n` at least 1.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let (num, unit) = s
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("rate `{s}` must look like \"100/s\" (per s, min, h or d)"))?;
    let count: u32 = num
        .trim()
        .parse()
        .map_err(|_| format!("rate `{s}` must start with a whole number"))?;
    if count == 0 {
        return Err(format!("rate `{s}` is zero: it would refuse every request"));
    }
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "min" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        "d" => Duration::from_secs(86400),
        other => return Err(format!("rate `{s}`: unknown unit `{other}` (s, min, h, d)")),
    };
    let rate = Rate { count, per };
    if rate.interval().is_zero() {
        return Err(format!("rate `{s}` is too high to measure"));
    }
    Ok(rate)
}

/// Unix seconds as RFC 3339 in UTC (`2026-12-01T23:59:00Z`).
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rest = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_of_unix_seconds() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_796_169_599), "2026-12-01T23:59:59Z");
    }

    use super::*;

    #[test]
    fn rates() {
        let r = parse_rate("100/s").unwrap();
        assert_eq!((r.count, r.per), (100, Duration::from_secs(1)));
        assert_eq!(r.interval(), Duration::from_millis(10));
        assert_eq!(
            parse_rate("3/min").unwrap().interval(),
            Duration::from_secs(20)
        );
        assert_eq!(parse_rate("10/h").unwrap().per, Duration::from_secs(3600));
        assert_eq!(parse_rate("1/d").unwrap().per, Duration::from_secs(86400));
        for bad in [
            "0/s",
            "100",
            "x/s",
            "-1/s",
            "10/m",
            "10/week",
            "5000000000/s",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604800));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
