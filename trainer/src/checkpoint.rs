//! Epoch-end checkpoints: weights, optimizer state, recorder state and progress, so that
//! `--resume` continues a killed run without losing recorded counts.
//!
//! Each part is written atomically and the progress file last: a checkpoint counts only once its
//! progress file names it, so a kill between parts leaves the previous checkpoint in force.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use hidden_neurons::model::TappedModel;
use hidden_neurons::recording::{Recorder, RecorderState};
use hidden_neurons::train::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use crate::files::{read, write_atomic};

/// Where a run stands after a completed epoch.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Training steps completed.
    pub step: u64,
    pub epoch_loss: Vec<f64>,
    pub epoch_test_accuracy: Vec<f64>,
    pub train_seconds: f64,
    /// Identifies the run's settings; resuming with other settings is refused.
    pub fingerprint: String,
    /// Suffix of the part files of this checkpoint (alternates so the previous one survives).
    pub slot: u8,
}

pub struct Checkpoint {
    dir: PathBuf,
}

impl Checkpoint {
    pub fn new(model_dir: &Path) -> Self {
        Self { dir: model_dir.join("checkpoint") }
    }

    fn part(&self, name: &str, slot: u8) -> PathBuf {
        self.dir.join(format!("{name}.{slot}"))
    }

    fn progress_path(&self) -> PathBuf {
        self.dir.join("progress.json")
    }

    pub fn exists(&self) -> bool {
        self.progress_path().is_file()
    }

    pub fn save<M: TappedModel>(&self, model: &M, optim: &ModuleOptimizer, recorder: &Recorder, progress: &Progress) -> Result<Progress> {
        let previous = self.load_progress().ok().map(|p| p.slot);
        let slot = match previous {
            Some(0) => 1,
            _ => 0,
        };
        let model_bytes = model.clone().into_record().into_bytes().context("serializing the model")?;
        write_atomic(&self.part("model.bpk", slot), &model_bytes)?;
        let optim_bytes = optim.into_bytes().context("serializing the optimizer")?;
        write_atomic(&self.part("optim.bpk", slot), &optim_bytes)?;
        write_atomic(&self.part("recorder.bin", slot), &recorder.to_state().to_bytes())?;
        let progress = Progress { slot, ..progress.clone() };
        write_atomic(&self.progress_path(), serde_json::to_string_pretty(&progress)?.as_bytes())?;
        Ok(progress)
    }

    pub fn load_progress(&self) -> Result<Progress> {
        let path = self.progress_path();
        serde_json::from_slice(&read(&path)?).with_context(|| format!("{}: not a checkpoint progress file", path.display()))
    }

    /// Restores model, optimizer and recorder from the checkpoint the progress file names.
    pub fn load<M: TappedModel>(&self, model: M, optim: ModuleOptimizer, device: &Device, fingerprint: &str) -> Result<(M, ModuleOptimizer, Recorder, Progress)> {
        let progress = self.load_progress()?;
        if progress.fingerprint != fingerprint {
            bail!(
                "{}: checkpoint was made with other settings ({}); now {}. Use another --out or drop --resume",
                self.dir.display(),
                progress.fingerprint,
                fingerprint
            );
        }
        let slot = progress.slot;
        let path = self.part("model.bpk", slot);
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(read(&path)?))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let model = model.load_record(record);
        let path = self.part("optim.bpk", slot);
        let optim = optim
            .from_bytes(Bytes::from_bytes_vec(read(&path)?))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let path = self.part("recorder.bin", slot);
        let state = RecorderState::from_bytes(&read(&path)?).with_context(|| format!("{}", path.display()))?;
        Ok((model, optim, Recorder::from_state(state, device), progress))
    }
}
