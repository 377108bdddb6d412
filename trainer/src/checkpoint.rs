//! Epoch-end checkpoints: weights, optimizer state, recorder state and progress, so that
//! `--resume` continues a killed run without losing recorded counts.
//!
//! Each part is written atomically and the progress file last: a checkpoint counts only once its
//! progress file names it, so a kill between parts leaves the previous checkpoint in force.
//!
//! Every part carries the settings of the run that wrote it and a checksum of its payload, and is
//! checked against both before burn sees a byte of it: a part from another run (two runs sharing
//! an `--out` folder) or a damaged one is refused with a message naming the file, instead of
//! panicking inside burn's record loader or a scatter-add.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use hidden_neurons::model::{LayerInfo, TappedModel};
use hidden_neurons::recording::{Recorder, RecorderState, RecordingMode};
pub use hidden_neurons::run::Progress;
use hidden_neurons::train::ModuleOptimizer;

use crate::files::{read, write_atomic};

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

    /// Writes a checkpoint; `recorder` is `None` for a run that records no signs (ResNet50
    /// fine-tuning).
    pub fn save<M: TappedModel>(&self, model: &M, optim: &ModuleOptimizer, recorder: Option<&Recorder>, progress: &Progress) -> Result<()> {
        let previous = self.load_progress().ok().map(|p| p.slot);
        let slot = match previous {
            Some(0) => 1,
            _ => 0,
        };
        let fp = &progress.fingerprint;
        let model_bytes = model.clone().into_record().into_bytes().context("serializing the model")?;
        write_atomic(&self.part("model.bpk", slot), &seal(fp, &model_bytes))?;
        let optim_bytes = optim.into_bytes().context("serializing the optimizer")?;
        write_atomic(&self.part("optim.bpk", slot), &seal(fp, &optim_bytes))?;
        if let Some(recorder) = recorder {
            write_atomic(&self.part("recorder.bin", slot), &seal(fp, &recorder.to_state().to_bytes()))?;
        }
        let progress = Progress { slot, ..progress.clone() };
        write_atomic(&self.progress_path(), serde_json::to_string_pretty(&progress)?.as_bytes())
    }

    pub fn load_progress(&self) -> Result<Progress> {
        let path = self.progress_path();
        let progress: Progress =
            serde_json::from_slice(&read(&path)?).with_context(|| format!("{}: not a checkpoint progress file", path.display()))?;
        if progress.slot > 1 || progress.epoch_loss.len() != progress.epochs_done || progress.epoch_test_accuracy.len() != progress.epochs_done {
            bail!("{}: inconsistent checkpoint progress (slot {}, {} epochs done)", path.display(), progress.slot, progress.epochs_done);
        }
        Ok(progress)
    }

    /// Restores model, optimizer and recorder from the checkpoint the progress file names, each
    /// part checked against this run's settings (`fingerprint`), its layers, count rows and mode.
    #[allow(clippy::too_many_arguments)]
    pub fn load<M: TappedModel>(
        &self,
        model: M,
        optim: ModuleOptimizer,
        device: &Device,
        fingerprint: &str,
        layers: &[LayerInfo],
        items: usize,
        mode: RecordingMode,
        limit: u64,
    ) -> Result<(M, ModuleOptimizer, Recorder, Progress)> {
        let progress = self.load_progress_of(fingerprint)?;
        let slot = progress.slot;
        // The recorder first: it is ours to check in full, and cheap.
        let path = self.part("recorder.bin", slot);
        let state = RecorderState::from_bytes(&unseal(&path, fingerprint, limit)?).with_context(|| format!("{}", path.display()))?;
        if state.layers != layers || state.items != items || state.mode != mode {
            bail!(
                "{}: recorder state of another run ({:?} mode, {} rows, layers {:?}); this run has {:?} mode, {} rows, layers {:?}",
                path.display(),
                state.mode,
                state.items,
                state.layers.iter().map(|l| (&l.name, l.neurons)).collect::<Vec<_>>(),
                mode,
                items,
                layers.iter().map(|l| (&l.name, l.neurons)).collect::<Vec<_>>()
            );
        }
        let (model, optim) = self.load_weights(model, optim, slot, fingerprint, limit)?;
        Ok((model, optim, Recorder::from_state(state, device), progress))
    }

    /// Restores model and optimizer of a run that records no signs.
    pub fn load_training<M: TappedModel>(&self, model: M, optim: ModuleOptimizer, fingerprint: &str, limit: u64) -> Result<(M, ModuleOptimizer, Progress)> {
        let progress = self.load_progress_of(fingerprint)?;
        let (model, optim) = self.load_weights(model, optim, progress.slot, fingerprint, limit)?;
        Ok((model, optim, progress))
    }

    /// The progress file, if this run's settings wrote it.
    fn load_progress_of(&self, fingerprint: &str) -> Result<Progress> {
        let progress = self.load_progress()?;
        if progress.fingerprint != fingerprint {
            bail!(
                "{}: checkpoint was made with other settings ({}); now {}. Use another --out or drop --resume",
                self.dir.display(),
                progress.fingerprint,
                fingerprint
            );
        }
        Ok(progress)
    }

    fn load_weights<M: TappedModel>(&self, model: M, optim: ModuleOptimizer, slot: u8, fingerprint: &str, limit: u64) -> Result<(M, ModuleOptimizer)> {
        let path = self.part("model.bpk", slot);
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(unseal(&path, fingerprint, limit)?))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let model = model.load_record(record);
        let non_finite = hidden_neurons::finite::non_finite_tensors(&model);
        if !non_finite.is_empty() {
            bail!(
                "{}: weights {} hold NaN or infinite values: this checkpoint is damaged and cannot be resumed; delete {} to start over, or use another --out",
                path.display(),
                hidden_neurons::finite::few_names(&non_finite, hidden_neurons::finite::NAMES_SHOWN),
                self.dir.display()
            );
        }
        let path = self.part("optim.bpk", slot);
        let optim = optim
            .from_bytes(Bytes::from_bytes_vec(unseal(&path, fingerprint, limit)?))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok((model, optim))
    }
}

/// What starts every checkpoint part.
const PART_MAGIC: &[u8; 8] = b"HNPART01";

/// A part's bytes: magic, the settings' length and text, the payload's length and CRC-32, then
/// the payload.
fn seal(fingerprint: &str, payload: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(payload);
    let mut out = Vec::with_capacity(32 + fingerprint.len() + payload.len());
    out.extend_from_slice(PART_MAGIC);
    out.extend_from_slice(&(fingerprint.len() as u64).to_le_bytes());
    out.extend_from_slice(fingerprint.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of the part at `path`, if it was written by a run with these settings, is whole,
/// and declares at most `limit` bytes (checked before the payload is read).
fn unseal(path: &Path, fingerprint: &str, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let bad = |why: String| anyhow::anyhow!("{}: {why}; use another --out or drop --resume", path.display());
    let mut file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let file_len = file.metadata().with_context(|| format!("reading {}", path.display()))?.len();
    let mut take = |n: u64, what: &str| -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        (&mut file).take(n).read_to_end(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if (buf.len() as u64) < n {
            return Err(bad(format!("truncated checkpoint part ({what})")));
        }
        Ok(buf)
    };
    let u64_of = |b: Vec<u8>| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    if take(8, "magic")? != PART_MAGIC {
        return Err(bad("not a checkpoint part of this trainer (bad magic)".into()));
    }
    let len = u64_of(take(8, "settings length")?);
    if len != fingerprint.len() as u64 {
        return Err(bad(format!("written by a run with other settings ({len}-byte settings); this run: {fingerprint}")));
    }
    let written_by = take(len, "settings")?;
    if written_by != fingerprint.as_bytes() {
        return Err(bad(format!(
            "written by a run with other settings ({}); this run: {fingerprint}",
            String::from_utf8_lossy(&written_by)
        )));
    }
    let payload_len = u64_of(take(8, "payload length")?);
    let sum = u32::from_le_bytes(take(4, "checksum")?.try_into().expect("4 bytes"));
    let header = 8 + 8 + len + 8 + 4;
    if payload_len > limit {
        return Err(bad(format!("declares a {payload_len}-byte payload, more than this run's parts can hold ({limit})")));
    }
    if file_len != header + payload_len {
        return Err(bad(format!("{file_len} bytes, but its header declares {}", header + payload_len)));
    }
    let payload = take(payload_len, "payload")?;
    let mut crc = flate2::Crc::new();
    crc.update(&payload);
    if crc.sum() != sum {
        return Err(bad("damaged checkpoint part (checksum mismatch)".into()));
    }
    Ok(payload)
}
