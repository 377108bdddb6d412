//! Finite-number checks on weights and losses: a NaN or an infinity in loaded weights or in one
//! step's loss makes every later number garbage, so it stops a run with a message that names
//! the tensor or the step instead of being trained on.

#[cfg(feature = "native")]
use burn::store::ModuleSnapshot;
#[cfg(feature = "native")]
use burn::tensor::DType;
use burn::tensor::Tensor;

use crate::stats::read_f32;

/// The names of `module`'s float tensors (parameters and buffers such as batch-norm's running
/// statistics) that hold a NaN or an infinity, in the module's own path notation.
#[cfg(feature = "native")]
pub fn non_finite_tensors<M: ModuleSnapshot>(module: &M) -> Vec<String> {
    let mut bad = Vec::new();
    for tensor in module.collect(None, None, false) {
        let finite = match tensor.to_bytes() {
            Ok(bytes) => match tensor.dtype {
                DType::F32 => bytes.chunks_exact(4).all(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()),
                DType::F64 => bytes.chunks_exact(8).all(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")).is_finite()),
                _ => true,
            },
            // A tensor that cannot be read back is no evidence of a NaN; loading reports it.
            Err(_) => true,
        };
        if !finite {
            bad.push(tensor.name.clone());
        }
    }
    bad
}

/// How many names an error message lists before it counts the rest.
pub const NAMES_SHOWN: usize = 5;

/// A few names, then how many more: for error messages about many tensors.
pub fn few_names(names: &[String], shown: usize) -> String {
    let mut text = names.iter().take(shown).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > shown {
        text += &format!(" and {} more", names.len() - shown);
    }
    text
}

/// A step whose loss was not a finite number.
#[derive(Clone, Debug, PartialEq)]
pub struct NonFiniteLoss {
    /// The training step (0-based, counted over the whole run).
    pub step: u64,
    pub loss: f32,
}

/// Every training step's loss, kept on the device and read back in groups, so that each step is
/// checked without a device read per step.
#[derive(Default)]
pub struct LossLog {
    pending: Vec<(u64, Tensor<1>)>,
    /// Steps of the losses handed out by [`LossLog::take_pending`], awaiting their values.
    taken: Vec<u64>,
    sum: f64,
    steps: usize,
}

impl LossLog {
    pub fn push(&mut self, step: u64, loss: Tensor<1>) {
        self.pending.push((step, loss));
    }

    /// Reads the pending losses; the first that is not finite is the error.
    pub fn check(&mut self) -> Result<(), NonFiniteLoss> {
        match self.take_pending() {
            Some(losses) => {
                let values = read_f32(losses);
                self.absorb(&values)
            }
            None => Ok(()),
        }
    }

    /// The pending losses as one tensor, for a caller that reads them itself (awaited on
    /// WebGPU); their values go to [`LossLog::absorb`].
    pub fn take_pending(&mut self) -> Option<Tensor<1>> {
        if self.pending.is_empty() {
            return None;
        }
        let (steps, losses): (Vec<u64>, Vec<Tensor<1>>) = std::mem::take(&mut self.pending).into_iter().unzip();
        self.taken = steps;
        Some(Tensor::cat(losses, 0))
    }

    /// The values of the losses [`LossLog::take_pending`] handed out.
    pub fn absorb(&mut self, values: &[f32]) -> Result<(), NonFiniteLoss> {
        let steps = std::mem::take(&mut self.taken);
        for (&step, &loss) in steps.iter().zip(values) {
            if !loss.is_finite() {
                return Err(NonFiniteLoss { step, loss });
            }
            self.sum += loss as f64;
            self.steps += 1;
        }
        Ok(())
    }

    /// The mean loss of the steps checked so far (NaN before any).
    pub fn mean(&self) -> f64 {
        if self.steps == 0 { f64::NAN } else { self.sum / self.steps as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn the_first_non_finite_step_is_named_among_finite_ones() {
        let device = Device::flex();
        let loss = |v: f32| Tensor::<1>::from_data(TensorData::new(vec![v], [1]), &device);
        let mut log = LossLog::default();
        log.push(10, loss(2.0));
        log.push(11, loss(4.0));
        assert_eq!(log.check(), Ok(()));
        assert_eq!(log.mean(), 3.0);
        // One NaN among finite losses, whose mean over the group would hide nothing but whose
        // step must be the one named; an infinity after it is not reached.
        for (step, v) in [(12, 1.0), (13, f32::NAN), (14, f32::INFINITY), (15, 1.0)] {
            log.push(step, loss(v));
        }
        let bad = log.check().unwrap_err();
        assert_eq!(bad.step, 13);
        assert!(bad.loss.is_nan());
        let mut log = LossLog::default();
        log.push(0, loss(f32::NEG_INFINITY));
        assert_eq!(log.check(), Err(NonFiniteLoss { step: 0, loss: f32::NEG_INFINITY }));
        assert!(LossLog::default().mean().is_nan());
    }

    #[test]
    fn few_names_counts_the_rest() {
        let names: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
        assert_eq!(few_names(&names, 3), "t0, t1, t2 and 4 more");
        assert_eq!(few_names(&names[..2], 3), "t0, t1");
    }
}
