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

/// Floats that must come back bit for bit (a checkpoint's progress: a resumed run's results must
/// equal an uninterrupted run's). serde_json's default parser is best-effort and can land one ulp
/// off (its exact `float_roundtrip` feature would rebuild all of burn, which depends on serde_json
/// too), so these are written as text in Rust's shortest round-trip form and parsed by Rust's
/// exact parser; plain numbers (files of older versions) still read, as does `null` (NaN).
pub mod exact {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Text(String),
        Number(f64),
        Missing(()),
    }

    fn read<E: serde::de::Error>(v: Stored) -> Result<f64, E> {
        match v {
            Stored::Text(t) => t.parse().map_err(|_| E::custom(format!("{t:?} is not a number"))),
            Stored::Number(x) => Ok(x),
            Stored::Missing(()) => Ok(f64::NAN),
        }
    }

    /// One float.
    pub mod one {
        use super::*;

        pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(v)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
            read(Stored::deserialize(d)?)
        }
    }

    /// A series.
    pub mod many {
        use super::*;

        pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|x| x.to_string()))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
            Vec::<Stored>::deserialize(d)?.into_iter().map(read).collect()
        }
    }

    /// Series of series.
    pub mod rows {
        use super::*;

        pub fn serialize<S: Serializer>(v: &[Vec<f64>], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|row| row.iter().map(|x| x.to_string()).collect::<Vec<_>>()))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
            Vec::<Vec<Stored>>::deserialize(d)?.into_iter().map(|row| row.into_iter().map(read).collect()).collect()
        }
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

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Kept {
        #[serde(with = "super::exact::one")]
        one: f64,
        #[serde(with = "super::exact::many")]
        many: Vec<f64>,
        #[serde(with = "super::exact::rows")]
        rows: Vec<Vec<f64>>,
    }

    #[test]
    fn exact_floats_come_back_bit_for_bit_and_old_numbers_still_read() {
        // Values of the kind a run stores: f32 results widened to f64, sums of them, quotients.
        let mut values: Vec<f64> = (1..2000u32).map(|i| (i as f32 * 0.000_407_218_9).sqrt() as f64 / 7.0).collect();
        values.extend([0.000_407_218_933_105_468_75, 2.339_961_814_880_371, 1.0 / 3.0, f64::MIN_POSITIVE, 1e300]);
        let kept = Kept { one: values[5], many: values.clone(), rows: vec![values.clone(), vec![]] };
        let back: Kept = serde_json::from_str(&serde_json::to_string(&kept).unwrap()).unwrap();
        for (a, b) in back.many.iter().zip(&values) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a} vs {b}");
        }
        assert_eq!(back, kept);
        let nan: Kept = serde_json::from_str(&serde_json::to_string(&Kept { one: f64::NAN, many: vec![f64::INFINITY], rows: vec![] }).unwrap()).unwrap();
        assert!(nan.one.is_nan() && nan.many[0] == f64::INFINITY);
        let old: Kept = serde_json::from_str(r#"{"one":0.25,"many":[1.5,null],"rows":[[2.0]]}"#).unwrap();
        assert_eq!((old.one, old.many[0], old.rows[0][0]), (0.25, 1.5, 2.0));
        assert!(old.many[1].is_nan());
        assert!(serde_json::from_str::<Kept>(r#"{"one":"zero","many":[],"rows":[]}"#).is_err());
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
