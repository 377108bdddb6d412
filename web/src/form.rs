//! The page's settings form: the text the user typed in each field, read into [`Settings`] and
//! checked with [`Settings::validate`]. One message names the first problem; while there is one,
//! nothing can train. Portable, so that it is tested natively.

use hidden_neurons::settings::{Setting, SettingError};

use crate::protocol::{Settings, page_message};

/// A text field of the form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Epochs,
    Batch,
    LearningRate,
    Seed,
}

impl Field {
    pub const ALL: [Field; 4] = [Field::Epochs, Field::Batch, Field::LearningRate, Field::Seed];

    /// The input's id (the same as its key in the URL).
    pub fn id(self) -> &'static str {
        match self {
            Field::Epochs => "epochs",
            Field::Batch => "batch",
            Field::LearningRate => "lr",
            Field::Seed => "seed",
        }
    }

    /// The shared setting behind it (the seed has none: every value is fine).
    pub fn setting(self) -> Option<Setting> {
        match self {
            Field::Epochs => Some(Setting::Epochs),
            Field::Batch => Some(Setting::Batch),
            Field::LearningRate => Some(Setting::LearningRate),
            Field::Seed => None,
        }
    }

    /// The field showing `setting`, if the form has one.
    pub fn of(setting: Setting) -> Option<Field> {
        Self::ALL.into_iter().find(|f| f.setting() == Some(setting))
    }

    /// Its label on the page, the name its messages use.
    pub fn label(self) -> &'static str {
        self.setting().map(Setting::label).unwrap_or("seed")
    }

    fn index(self) -> usize {
        self as usize
    }

    fn text_of(self, s: &Settings) -> String {
        match self {
            Field::Epochs => s.epochs.to_string(),
            Field::Batch => s.batch_size.to_string(),
            Field::LearningRate => s.learning_rate.to_string(),
            Field::Seed => s.seed.to_string(),
        }
    }
}

/// Why the form cannot train: the message for the user and the field to mark, if it is one of
/// the form's (a memory problem is all of them together).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormError {
    pub field: Option<Field>,
    pub message: String,
}

impl FormError {
    fn setting(e: &SettingError) -> Self {
        Self { field: Field::of(e.setting), message: page_message(e) }
    }

    fn unreadable(field: Field, problem: String) -> Self {
        let message = match field.setting() {
            Some(setting) => page_message(&SettingError::new(setting, problem)),
            None => format!("{}: {problem}; allowed: 0 to {}", field.label(), u64::MAX),
        };
        Self { field: Some(field), message }
    }
}

/// What the user typed, field by field, kept as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form {
    texts: [String; 4],
}

impl Form {
    /// The form showing `settings`.
    pub fn new(settings: &Settings) -> Self {
        Self { texts: Field::ALL.map(|f| f.text_of(settings)) }
    }

    pub fn text(&self, field: Field) -> &str {
        &self.texts[field.index()]
    }

    pub fn set(&mut self, field: Field, text: String) {
        self.texts[field.index()] = text;
    }

    /// The settings the form describes over `base` (which gives what the form has no field
    /// for: activation, backend, recording cadence, tracked samples), if they can train.
    pub fn read(&self, base: &Settings) -> Result<Settings, FormError> {
        let mut s = base.clone();
        s.epochs = self.whole(Field::Epochs)?;
        s.batch_size = self.whole(Field::Batch)?;
        s.learning_rate = self.number(Field::LearningRate)?;
        s.seed = self.whole(Field::Seed)?;
        s.validate().map_err(|e| FormError::setting(&e))?;
        Ok(s)
    }

    fn whole<T: std::str::FromStr>(&self, field: Field) -> Result<T, FormError> {
        let t = self.text(field).trim();
        if let Ok(x) = t.parse::<T>() {
            return Ok(x);
        }
        let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
        let problem = if t.is_empty() {
            "nothing entered".to_string()
        } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            format!("{t} is out of range")
        } else if t.parse::<f64>().is_ok() {
            format!("'{t}' is not a whole number")
        } else {
            format!("'{t}' is not a number")
        };
        Err(FormError::unreadable(field, problem))
    }

    fn number(&self, field: Field) -> Result<f64, FormError> {
        let t = self.text(field).trim();
        match t.parse::<f64>() {
            Ok(x) => Ok(x),
            Err(_) if t.is_empty() => Err(FormError::unreadable(field, "nothing entered".into())),
            Err(_) => Err(FormError::unreadable(field, format!("'{t}' is not a number"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(edits: &[(Field, &str)]) -> Result<Settings, FormError> {
        let base = Settings::default();
        let mut form = Form::new(&base);
        for &(f, t) in edits {
            form.set(f, t.into());
        }
        form.read(&base)
    }

    #[test]
    fn the_untouched_form_reads_back_its_settings() {
        let s = Settings { epochs: 3, batch_size: 64, learning_rate: 0.0005, seed: 42, ..Settings::default() };
        assert_eq!(Form::new(&s).read(&s), Ok(s));
        let read = typed(&[(Field::Batch, " 256 "), (Field::LearningRate, "2e-3"), (Field::Seed, "18446744073709551615")]).unwrap();
        assert_eq!((read.batch_size, read.learning_rate, read.seed), (256, 0.002, u64::MAX));
    }

    #[test]
    fn every_bad_text_is_one_message_naming_its_field() {
        let cases: &[(Field, &str, &str)] = &[
            (Field::LearningRate, "abc", "learning rate: 'abc' is not a number; allowed: a number above 0, at most 1"),
            (Field::LearningRate, "", "learning rate: nothing entered"),
            (Field::LearningRate, "nan", "learning rate: NaN is out of range"),
            (Field::LearningRate, "-inf", "learning rate: -inf is out of range"),
            (Field::LearningRate, "0", "learning rate: 0 is out of range"),
            (Field::LearningRate, "5", "learning rate: 5 is out of range; allowed: a number above 0, at most 1"),
            (Field::Batch, "0", "batch size: 0 is out of range; allowed: 1 to 4096"),
            (Field::Batch, "5000", "batch size: 5000 is out of range; allowed: 1 to 4096"),
            (Field::Batch, "-1", "batch size: -1 is out of range"),
            (Field::Batch, "99999999999999999999999", "batch size: 99999999999999999999999 is out of range"),
            (Field::Batch, "1.5", "batch size: '1.5' is not a whole number"),
            (Field::Batch, "twelve", "batch size: 'twelve' is not a number"),
            (Field::Epochs, "0", "epochs: 0 is out of range; allowed: 1 to 50"),
            (Field::Epochs, "51", "epochs: 51 is out of range"),
            (Field::Epochs, "", "epochs: nothing entered"),
            (Field::Seed, "-1", "seed: -1 is out of range; allowed: 0 to 18446744073709551615"),
            (Field::Seed, "x", "seed: 'x' is not a number"),
        ];
        for &(field, text, expected) in cases {
            let e = typed(&[(field, text)]).unwrap_err();
            assert!(e.message.starts_with(expected), "{field:?} '{text}': {}", e.message);
            assert_eq!(e.field, Some(field), "{}", e.message);
        }
    }

    #[test]
    fn sizes_that_do_not_fit_in_memory_are_refused_as_a_whole() {
        // Batch 1 with a recording every 10 batches: 6000 recordings of 1000 x 64 x 2 floats.
        let e = typed(&[(Field::Batch, "1")]).unwrap_err();
        assert!(e.message.starts_with("memory: ") && e.message.contains("GiB"), "{}", e.message);
        assert_eq!(e.field, None);
        assert!(typed(&[(Field::Batch, "1"), (Field::Epochs, "1")]).is_err());
        let base = Settings { every_batches: 100, ..Settings::default() };
        let mut form = Form::new(&base);
        form.set(Field::Batch, "1".into());
        assert!(form.read(&base).is_ok());
    }
}
