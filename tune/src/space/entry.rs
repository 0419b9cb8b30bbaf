//! One table of a search space file, as written, checked into a [`Param`]: its type, its
//! range or choices, and fields that do not apply to its type.

use serde::Deserialize;

use super::Param;

/// One table of the file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Entry {
    r#type: String,
    low: Option<toml::Value>,
    high: Option<toml::Value>,
    #[serde(default)]
    log: bool,
    #[serde(default)]
    power_of_two: bool,
    choices: Option<Vec<toml::Value>>,
}

/// One entry checked into a [`Param`] (the key is added by the caller).
pub(super) fn param(key: &str, e: Entry) -> Result<Param, String> {
    let key = key.to_owned();
    let unused = |field: &str, present: bool| match present {
        true => Err(format!("`{field}` does not apply to type = \"{}\"", e.r#type)),
        false => Ok(()),
    };
    match e.r#type.as_str() {
        "float" => {
            unused("power_of_two", e.power_of_two)?;
            unused("choices", e.choices.is_some())?;
            let low = number(e.low.as_ref(), "low")?;
            let high = number(e.high.as_ref(), "high")?;
            range(low, high)?;
            if e.log && low <= 0.0 {
                return Err(format!("log = true needs low > 0, and low = {low}"));
            }
            Ok(Param::Float { key, low, high, log: e.log })
        }
        "int" => {
            unused("choices", e.choices.is_some())?;
            let low = integer(e.low.as_ref(), "low")?;
            let high = integer(e.high.as_ref(), "high")?;
            range(low, high)?;
            if (e.log || e.power_of_two) && low <= 0 {
                return Err(format!(
                    "{} needs low > 0, and low = {low}",
                    if e.log { "log = true" } else { "power_of_two = true" }
                ));
            }
            if !e.power_of_two {
                return Ok(Param::Int { key, low, high, log: e.log });
            }
            if e.log {
                return Err("choose one of log and power_of_two".into());
            }
            // The powers of two inside [low, high].
            let low_exp = (low as u64).next_power_of_two().trailing_zeros();
            let high_exp = 63 - (high as u64).leading_zeros();
            if low_exp > high_exp {
                return Err(format!("no power of two in [{low}, {high}] (an empty range)"));
            }
            Ok(Param::PowerOfTwo { key, low_exp, high_exp })
        }
        "categorical" => {
            unused("low", e.low.is_some())?;
            unused("high", e.high.is_some())?;
            unused("log", e.log)?;
            unused("power_of_two", e.power_of_two)?;
            let choices =
                e.choices.ok_or("`choices` missing: a list such as [\"siplv1\", \"opl\"]")?;
            if choices.is_empty() {
                return Err("choices = []: a categorical needs at least one choice".into());
            }
            if let Some(v) =
                choices.iter().find(|v| v.is_table() || v.is_array() || v.is_datetime())
            {
                return Err(format!("choice {v} is not a string, number or boolean"));
            }
            twice(&choices)?;
            Ok(Param::Categorical { key, choices })
        }
        other => Err(format!("type = {other:?}: must be \"float\", \"int\" or \"categorical\"")),
    }
}

fn range<T: PartialOrd + std::fmt::Display>(low: T, high: T) -> Result<(), String> {
    if low > high {
        return Err(format!("low = {low} is above high = {high} (an inverted range)"));
    }
    if low == high {
        return Err(format!(
            "low = high = {low} (an empty range): to fix a value, use --set instead"
        ));
    }
    Ok(())
}

fn number(v: Option<&toml::Value>, field: &str) -> Result<f64, String> {
    match v {
        Some(toml::Value::Float(x)) if x.is_finite() => Ok(*x),
        Some(toml::Value::Integer(i)) => Ok(*i as f64),
        Some(other) => Err(format!("{field} = {other}: must be a finite number")),
        None => Err(format!("`{field}` missing")),
    }
}

fn integer(v: Option<&toml::Value>, field: &str) -> Result<i64, String> {
    match v {
        Some(toml::Value::Integer(i)) => Ok(*i),
        Some(other) => Err(format!("{field} = {other}: must be an integer")),
        None => Err(format!("`{field}` missing")),
    }
}

/// A choice listed twice (it would be drawn twice as often, unseen): an error naming it.
pub(super) fn twice(choices: &[toml::Value]) -> Result<(), String> {
    match choices.iter().enumerate().find(|(i, v)| choices[..*i].contains(v)) {
        Some((_, v)) => Err(format!("choice {v} is listed twice")),
        None => Ok(()),
    }
}
