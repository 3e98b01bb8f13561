//! `--since TIME`: unix seconds (`1763700000`, `1763700000.5`) or a duration back from
//! now made of number+unit pieces (`90s`, `10m`, `2h`, `1d`, `1h30m`).

use std::time::{SystemTime, UNIX_EPOCH};

pub fn parse(text: &str, now: f64) -> Result<f64, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(secs);
        }
    }
    let mut total = 0.0;
    let mut num = String::new();
    let mut pieces = 0;
    for c in t.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            'd' => 86400.0,
            _ => return Err(bad(text)),
        };
        let n: f64 = num.parse().map_err(|_| bad(text))?;
        total += n * unit;
        num.clear();
        pieces += 1;
    }
    if pieces == 0 || !num.is_empty() {
        return Err(bad(text));
    }
    Ok(now - total)
}

fn bad(text: &str) -> String {
    format!("--since {text:?}: expected unix seconds (1763700000) or a duration back from now (90s, 10m, 2h, 1d, 1h30m)")
}

pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::parse;

    #[test]
    fn forms() {
        assert_eq!(parse("1700000000", 0.0).unwrap(), 1.7e9);
        assert_eq!(parse("10m", 1000.0).unwrap(), 400.0);
        assert_eq!(parse("1h30m", 10000.0).unwrap(), 10000.0 - 5400.0);
        assert!(parse("10x", 0.0).is_err());
        assert!(parse("5", 0.0).is_ok());
        assert!(parse("h", 0.0).is_err());
        assert!(parse("", 0.0).is_err());
    }
}
