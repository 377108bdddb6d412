//! "No value" in the JSON we write. serde_json writes a NaN or infinite float as `null` and then
//! refuses to read that `null` back into a float, so an output with an empty category (a figure
//! band over no samples, an accuracy over nothing) would be written fine and then be unreadable by
//! `trainer validate` and `--resume`. Fields that may hold no value go through these helpers:
//! in the schema they are `number | null`, `null` meaning "no value"; in memory the missing
//! value is NaN, which the figure code already skips.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A float that may be missing.
pub mod opt_f64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        v.is_finite().then_some(*v).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// A series of `f64` of which some may be missing.
pub mod opt_f64s {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| x.is_finite().then_some(*x)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }
}

/// A series of `f32` of which some may be missing.
pub mod opt_f32s {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| x.is_finite().then_some(*x)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        Ok(Vec::<Option<f32>>::deserialize(d)?.into_iter().map(|x| x.unwrap_or(f32::NAN)).collect())
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Sample {
        #[serde(with = "super::opt_f64")]
        one: f64,
        #[serde(with = "super::opt_f64s")]
        many: Vec<f64>,
        #[serde(with = "super::opt_f32s")]
        small: Vec<f32>,
    }

    #[test]
    fn missing_values_round_trip_as_null() {
        let s = Sample { one: f64::NAN, many: vec![1.5, f64::INFINITY, f64::NAN], small: vec![f32::NAN, 2.0] };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"one":null,"many":[1.5,null,null],"small":[null,2.0]}"#);
        let back: Sample = serde_json::from_str(&json).unwrap();
        assert!(back.one.is_nan() && back.many[0] == 1.5 && back.many[1].is_nan() && back.small[1] == 2.0);
        let plain: Sample = serde_json::from_str(r#"{"one":0.25,"many":[],"small":[]}"#).unwrap();
        assert_eq!(plain.one, 0.25);
    }
}
