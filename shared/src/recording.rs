//! Experiments 1 and 2: gradient-sign counts per (sample, neuron) and pre-activation snapshots.
//!
//! Counts live on the device as `[items, neurons]` tensors per studied layer and grow by a
//! scatter-add of `(grad > 0)` and `(grad < 0)`; exact zeros add nothing. Only the snapshots of a
//! few chosen neurons (`[tracked, k]` per recording) come back to the host.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Normalization};
use crate::model::{CaptureTap, LayerInfo, ProbeTap, TappedModel};
use crate::readback::{ReadbackError, read_f32_async};
use crate::stats::read_f32;

/// Where the gradient signs come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingMode {
    /// Every K batches, a separate pass over a fixed tracked set with the current weights and
    /// dropout off (the paper's method).
    Tracked,
    /// Read from the training batches' own backward pass (free, but with dropout active and each
    /// sample seen once per epoch); counts cover the whole training set.
    Online,
}

impl std::str::FromStr for RecordingMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tracked" => Ok(Self::Tracked),
            "online" => Ok(Self::Online),
            o => Err(format!("unknown recording mode '{o}' (tracked, online)")),
        }
    }
}

impl RecordingMode {
    /// How the signs were obtained, in words, for results.json.
    pub fn note(self) -> String {
        match self {
            RecordingMode::Tracked => "tracked: every K batches, per-sample dLoss/dActivation on a fixed set of training samples with the current weights, dropout off and batch-norm (if any) in inference mode with its running statistics, so each sample's gradient depends on that sample alone; exact zeros ignored, and samples classified with float32 certainty (true-class probability >= 1 - certainty_epsilon, as Keras' clipped cross-entropy makes them) count as zeros".into(),
            RecordingMode::Online => "online: signs read from each training batch's own backward pass (dropout active, so dropped units give zero gradients, which are ignored; batch-norm, if any, uses batch statistics, which couple the gradients of the samples of a batch; certain samples count as zeros as in tracked mode); counts cover the whole training set, one sign per sample per epoch".into(),
        }
    }
}

/// The training samples a run tracks: a seeded choice of `count` of the `n_train`.
pub fn tracked_indices(n_train: usize, count: usize, seed: u64) -> Vec<usize> {
    crate::data::epoch_order(n_train, seed.wrapping_add(7919), 0).into_iter().take(count.min(n_train)).collect()
}

/// The neurons whose pre-activations are snapshotted: a seeded choice of `k` per layer.
pub fn snapshot_choice(layers: &[LayerInfo], k: usize, seed: u64) -> Vec<Vec<usize>> {
    layers
        .iter()
        .enumerate()
        .map(|(l, info)| {
            crate::data::epoch_order(info.neurons, seed.wrapping_add(31 + l as u64), 0).into_iter().take(k.min(info.neurons)).collect()
        })
        .collect()
}

/// [`snapshot_choice`] with `neuron` (clamped to each layer's width) always first among each
/// layer's: the neuron a reader looks at first (the page's default, a shared link's) is traced.
pub fn snapshot_choice_with(layers: &[LayerInfo], k: usize, seed: u64, neuron: usize) -> Vec<Vec<usize>> {
    let mut choice = snapshot_choice(layers, k, seed);
    for (traced, info) in choice.iter_mut().zip(layers) {
        if info.neurons == 0 || k == 0 {
            continue;
        }
        let n = neuron.min(info.neurons - 1);
        traced.retain(|&t| t != n);
        traced.truncate(k.min(info.neurons) - 1);
        traced.insert(0, n);
    }
    choice
}

/// Positions sampled per channel when a conv layer's signs are also counted per position
/// (`--conv-signs positions`).
pub const POSITIONS_PER_CHANNEL: usize = 16;

/// Per layer, `min(k, positions)` distinct positions per neuron, a seeded choice per neuron, as
/// `[k, neurons]` row-major; empty for a layer with one position (a dense layer).
pub fn position_choice(layers: &[LayerInfo], k: usize, seed: u64) -> Vec<Vec<i64>> {
    layers
        .iter()
        .enumerate()
        .map(|(l, info)| {
            if info.positions <= 1 || k == 0 {
                return Vec::new();
            }
            let k = k.min(info.positions);
            let mut out = vec![0i64; k * info.neurons];
            for n in 0..info.neurons {
                let order = crate::data::epoch_order(info.positions, seed.wrapping_add(53 + 1000 * l as u64), n);
                for (j, &p) in order.iter().take(k).enumerate() {
                    out[j * info.neurons + n] = p as i64;
                }
            }
            out
        })
        .collect()
}

/// Sign counts per (sample, sampled position, neuron) of the layers with several positions.
struct PositionCounts {
    /// Per layer: see [`position_choice`].
    choice: Vec<Vec<i64>>,
    /// Per layer: `[items * k, neurons]`, row `item * k + j` for the neuron's `j`-th position;
    /// `None` for a layer with one position.
    pos: Vec<Option<Tensor<2>>>,
    neg: Vec<Option<Tensor<2>>>,
}

impl PositionCounts {
    /// Positions per neuron of layer `layer` (0 when it has one position).
    fn k(&self, layer: usize, neurons: usize) -> usize {
        self.choice[layer].len() / neurons.max(1)
    }
}

/// Adds the signs of `grad` (`[rows.len(), neurons]`) to rows `rows` of `pos` and `neg`.
fn add_signs(pos: &mut Tensor<2>, neg: &mut Tensor<2>, rows: Tensor<1, Int>, grad: Tensor<2>) {
    // Moved out, not cloned: a uniquely held tensor is updated in place, while a shared one
    // would be copied whole at every step (the online counts span the training set).
    let add = |counts: &mut Tensor<2>, signs: Tensor<2>, rows: Tensor<1, Int>| {
        let placeholder = Tensor::<2>::empty([0, 0], &counts.device());
        let old = std::mem::replace(counts, placeholder);
        *counts = old.select_assign(0, rows, signs, IndexingUpdateOp::Add);
    };
    add(pos, grad.clone().greater_elem(0.0).float(), rows.clone());
    add(neg, grad.lower_elem(0.0).float(), rows);
}

/// The fixed set of training samples whose signs and pre-activations are followed.
pub struct TrackedSet {
    /// Indices into the training set.
    pub indices: Vec<usize>,
    /// Chunks of at most `chunk` samples: inputs, labels, and the rows they occupy.
    chunks: Vec<(Tensor<2>, Tensor<1, Int>, Tensor<1, Int>)>,
    pub labels: Vec<u8>,
    /// The (autodiff) device the chunks live on.
    pub device: Device,
}

impl TrackedSet {
    pub fn new(train: &Dataset, indices: Vec<usize>, norm: Normalization, chunk: usize, device: &Device) -> Self {
        let chunks = indices
            .chunks(chunk.max(1))
            .enumerate()
            .map(|(c, idx)| {
                let (x, y) = train.batch(idx, norm, device);
                let start = (c * chunk) as i64;
                let rows = Tensor::<1, Int>::from_data(
                    TensorData::new((start..start + idx.len() as i64).collect::<Vec<_>>(), [idx.len()]),
                    &device.clone().inner(),
                );
                (x, y, rows)
            })
            .collect();
        let labels = indices.iter().map(|&i| train.labels[i]).collect();
        Self { indices, chunks, labels, device: device.clone() }
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// Keras and TensorFlow, which the paper used, clip predicted probabilities to
/// `[1e-7, 1 - 1e-7]` in the cross-entropy, so a sample classified with float32 certainty has an
/// exactly zero gradient, which the paper's counts ignore. burn's log-softmax cross-entropy never
/// gives exact zeros; this epsilon restores the rule (0 turns it off).
pub const DEFAULT_CERTAINTY_EPSILON: f32 = 1e-7;

/// `[batch, 1]`: 1 for samples whose probability of their true class is at most `1 - epsilon`,
/// 0 for those classified with certainty (their gradients count as exact zeros). Like Keras'
/// clip of the probabilities to `[epsilon, 1 - epsilon]`, whose gradient vanishes only strictly
/// above the bound; with `epsilon = 0` no sample is ever masked.
pub fn uncertain_mask(logits: Tensor<2>, labels: Tensor<1, Int>, epsilon: f32) -> Tensor<2> {
    let [batch, _] = logits.dims();
    let p_true = burn::tensor::activation::softmax(logits, 1).gather(1, labels.reshape([batch, 1]));
    p_true.lower_equal_elem(1.0 - epsilon).float()
}

/// Signs counted so far plus the snapshots, for one model.
pub struct Recorder {
    pub mode: RecordingMode,
    pub layers: Vec<LayerInfo>,
    /// Rows of the count matrices: tracked samples (tracked mode) or training samples (online).
    pub items: usize,
    /// Samples in the tracked set (rows of each snapshot).
    pub tracked: usize,
    /// See [`uncertain_mask`].
    pub certainty_epsilon: f32,
    pos: Vec<Tensor<2>>,
    neg: Vec<Tensor<2>>,
    pub recordings: usize,
    /// Neurons whose pre-activations are snapshotted, per layer.
    pub snapshot_neurons: Vec<Vec<usize>>,
    /// Training step of each snapshot.
    pub steps: Vec<u64>,
    /// Per layer, per snapshot: `[tracked, k]` row-major.
    pub snapshots: Vec<Vec<Vec<f32>>>,
    /// Keep snapshots on the device until [`Recorder::settle`] reads them (WebGPU, where a
    /// blocking read panics); otherwise each is read as it is taken.
    pub deferred_reads: bool,
    /// Snapshots taken but not read yet: (step, one `[tracked, k]` tensor per layer).
    pending: Vec<(u64, Vec<Tensor<2>>)>,
    /// Conv layers' signs per sampled position too (tracked mode), beside the per-channel ones.
    positions: Option<PositionCounts>,
}

impl Recorder {
    pub fn new(mode: RecordingMode, layers: Vec<LayerInfo>, items: usize, tracked: usize, snapshot_neurons: Vec<Vec<usize>>, device: &Device) -> Self {
        let inner = device.clone().inner();
        let zeros = |l: &LayerInfo| Tensor::<2>::zeros([items, l.neurons], &inner);
        Self {
            mode,
            pos: layers.iter().map(zeros).collect(),
            neg: layers.iter().map(zeros).collect(),
            snapshots: vec![Vec::new(); layers.len()],
            layers,
            items,
            tracked,
            certainty_epsilon: DEFAULT_CERTAINTY_EPSILON,
            recordings: 0,
            snapshot_neurons,
            steps: Vec::new(),
            deferred_reads: false,
            pending: Vec::new(),
            positions: None,
        }
    }

    /// Also counts the signs of the conv layers per position, at `k` seeded positions per
    /// channel ([`position_choice`]); tracked mode only.
    pub fn with_positions(mut self, k: usize, seed: u64) -> Self {
        let choice = position_choice(&self.layers, k, seed);
        self.positions = Some(self.position_counts(choice));
        self
    }

    fn position_counts(&self, choice: Vec<Vec<i64>>) -> PositionCounts {
        let zeros = |(l, info): (usize, &LayerInfo)| {
            let k = choice[l].len() / info.neurons.max(1);
            (k > 0).then(|| Tensor::<2>::zeros([self.items * k, info.neurons], &self.pos[l].device()))
        };
        let pos = self.layers.iter().enumerate().map(zeros).collect();
        let neg = self.layers.iter().enumerate().map(zeros).collect();
        PositionCounts { choice, pos, neg }
    }

    /// Whether signs are counted per position too.
    pub fn counts_positions(&self) -> bool {
        self.positions.is_some()
    }

    /// Adds the signs of `grad` (`[rows.len(), neurons]`) to rows `rows` of layer `layer`.
    pub fn accumulate(&mut self, layer: usize, rows: Tensor<1, Int>, grad: Tensor<2>) {
        add_signs(&mut self.pos[layer], &mut self.neg[layer], rows, grad);
    }

    /// Adds the signs of the per-position gradient `grad` (`[batch, positions, neurons]`, already
    /// masked) at each neuron's sampled positions to the position counts of rows `rows`.
    fn accumulate_positions(&mut self, layer: usize, rows: Tensor<1, Int>, grad: Tensor<3>) {
        let neurons = self.layers[layer].neurons;
        let Some(pc) = self.positions.as_mut() else { return };
        let k = pc.k(layer, neurons);
        let (Some(pos), Some(neg)) = (pc.pos[layer].as_mut(), pc.neg[layer].as_mut()) else { return };
        let [b, _, n] = grad.dims();
        let device = grad.device();
        let idx = Tensor::<3, Int>::from_data(TensorData::new(pc.choice[layer].clone(), [1, k, n]), &device).expand([b, k, n]);
        let g = grad.gather(1, idx).reshape([b * k, n]); // row item * k + j
        let offsets = Tensor::<1, Int>::arange(0..k as i64, &device).reshape([1, k]).expand([b, k]);
        let rows = (rows.reshape([b, 1]).mul_scalar(k as i64).expand([b, k]) + offsets).reshape([b * k]);
        add_signs(pos, neg, rows, g);
    }

    /// One recording in tracked mode: per-sample dLoss/dActivation for the whole tracked set with
    /// the current weights, dropout off, and a snapshot of the chosen neurons.
    pub fn record_tracked<M: TappedModel>(&mut self, model: &M, tracked: &TrackedSet, step: u64) {
        // A validation snapshot moved back onto the autodiff device: dropout off and no parameter
        // gradients, so only the probes are differentiated. (`freeze()` on a clone flips the
        // shared require-grad state of the original model.)
        let frozen = model.valid().fork(&tracked.device);
        let mut snaps: Vec<Vec<Tensor<2>>> = vec![Vec::new(); self.layers.len()];
        for (x, y, rows) in &tracked.chunks {
            let mut tap = if self.positions.is_some() { ProbeTap::per_position() } else { ProbeTap::default() };
            let logits = frozen.forward_tapped(x.clone(), &mut tap);
            let uncertain = uncertain_mask(logits.clone().inner(), y.clone().inner(), self.certainty_epsilon);
            let loss = CrossEntropyLossConfig::new().init(&x.device()).forward(logits, y.clone());
            let mut grads = loss.backward();
            for layer in 0..self.layers.len() {
                let g = match tap.position_probes.get_mut(layer).and_then(Option::take) {
                    Some(probe) => {
                        let g = probe.grad_remove(&mut grads).expect("probe takes part in the loss") * uncertain.clone().unsqueeze_dim::<3>(2);
                        self.accumulate_positions(layer, rows.clone(), g.clone());
                        // The per-channel derivative: the probe broadcast over positions gets the sum.
                        g.sum_dim(1).squeeze_dim(1)
                    }
                    None => {
                        let probe = tap.probes.get_mut(layer).and_then(Option::take).expect("every studied layer is probed");
                        probe.grad_remove(&mut grads).expect("probe takes part in the loss") * uncertain.clone()
                    }
                };
                self.accumulate(layer, rows.clone(), g);
                let z = tap.pre[layer].take().expect("pre-activation kept").inner();
                snaps[layer].push(self.select_snapshot(layer, z));
            }
        }
        self.recordings += 1;
        self.push_snapshots(snaps, step);
    }

    /// Online mode's snapshot: a forward pass (no gradient) over the tracked set.
    pub fn snapshot_only<M: TappedModel>(&mut self, model: &M, tracked: &TrackedSet, step: u64) {
        let valid = model.valid();
        let mut snaps: Vec<Vec<Tensor<2>>> = vec![Vec::new(); self.layers.len()];
        for (x, _, _) in &tracked.chunks {
            let mut tap = CaptureTap::default();
            valid.forward_tapped(x.clone().inner(), &mut tap);
            for (layer, snap) in snaps.iter_mut().enumerate() {
                let z = tap.pre[layer].take().expect("pre-activation kept");
                snap.push(self.select_snapshot(layer, z));
            }
        }
        self.push_snapshots(snaps, step);
    }

    /// Counts one online recording (one training batch's signs were accumulated by the caller).
    pub fn count_online_batch(&mut self) {
        self.recordings += 1;
    }

    /// The chosen neurons' pre-activations `[batch, k]`; a conv layer's are averaged over
    /// positions, so that each tracked sample has one value per neuron.
    fn select_snapshot(&self, layer: usize, z: Tensor<3>) -> Tensor<2> {
        let neurons = &self.snapshot_neurons[layer];
        let idx: Vec<i64> = neurons.iter().map(|&n| n as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [neurons.len()]), &z.device());
        z.select(2, idx).mean_dim(1).squeeze_dim(1)
    }

    fn push_snapshots(&mut self, snaps: Vec<Vec<Tensor<2>>>, step: u64) {
        let layers: Vec<Tensor<2>> = snaps.into_iter().map(|parts| Tensor::cat(parts, 0)).collect();
        if self.deferred_reads {
            self.pending.push((step, layers));
        } else {
            self.store_snapshot(step, layers.into_iter().map(read_f32).collect());
        }
    }

    fn store_snapshot(&mut self, step: u64, layers: Vec<Vec<f32>>) {
        for (layer, values) in layers.into_iter().enumerate() {
            self.snapshots[layer].push(values);
        }
        self.steps.push(step);
    }

    /// Reads the deferred snapshots back (awaited), so that `steps` and `snapshots` are complete.
    /// A failed read leaves that snapshot and the later ones pending.
    pub async fn settle(&mut self) -> Result<(), ReadbackError> {
        while let Some((step, layers)) = self.pending.first().cloned() {
            let mut values = Vec::with_capacity(layers.len());
            for t in layers {
                values.push(read_f32_async(t).await?);
            }
            self.pending.remove(0);
            self.store_snapshot(step, values);
        }
        Ok(())
    }

    /// The count matrices of a layer (device tensors, `[items, neurons]`).
    pub fn counts(&self, layer: usize) -> (Tensor<2>, Tensor<2>) {
        (self.pos[layer].clone(), self.neg[layer].clone())
    }

    /// The per-position count matrices of a layer (`[items * k, neurons]`) and `k`, where counted.
    pub fn position_counts_of(&self, layer: usize) -> Option<(Tensor<2>, Tensor<2>, usize)> {
        let pc = self.positions.as_ref()?;
        let k = pc.k(layer, self.layers[layer].neurons);
        Some((pc.pos[layer].clone()?, pc.neg[layer].clone()?, k))
    }

    /// Everything needed to resume, on the host (blocking reads).
    pub fn to_state(&self) -> RecorderState {
        let mut state = self.state_with(
            self.pos.iter().map(|t| read_f32(t.clone())).collect(),
            self.neg.iter().map(|t| read_f32(t.clone())).collect(),
            true,
        );
        if let Some(pc) = &self.positions {
            let read = |v: &[Option<Tensor<2>>]| v.iter().map(|t| t.clone().map(read_f32).unwrap_or_default()).collect();
            state.position_choice = pc.choice.clone();
            state.position_pos = read(&pc.pos);
            state.position_neg = read(&pc.neg);
        }
        for (step, layers) in &self.pending {
            state.steps.push(*step);
            for (l, t) in layers.iter().enumerate() {
                state.snapshots[l].push(read_f32(t.clone()));
            }
        }
        state
    }

    /// A recorder on `device` with this one's sign counts, read with awaited reads, and no
    /// snapshots: what the sign summaries need, for WebGPU, where they cannot run. Settles the
    /// pending snapshots, so that this recorder's own are complete too.
    pub async fn counts_on(&mut self, device: &Device) -> Result<Recorder, ReadbackError> {
        self.settle().await?;
        let (mut pos, mut neg) = (Vec::new(), Vec::new());
        for (p, n) in self.pos.iter().zip(&self.neg) {
            pos.push(read_f32_async(p.clone()).await?);
            neg.push(read_f32_async(n.clone()).await?);
        }
        Ok(Recorder::from_state(self.state_with(pos, neg, false), device))
    }

    /// The state around the given counts; the snapshots are copied only `with_snapshots`.
    fn state_with(&self, pos: Vec<Vec<f32>>, neg: Vec<Vec<f32>>, with_snapshots: bool) -> RecorderState {
        RecorderState {
            mode: self.mode,
            layers: self.layers.clone(),
            items: self.items,
            tracked: self.tracked,
            certainty_epsilon: self.certainty_epsilon,
            recordings: self.recordings,
            snapshot_neurons: self.snapshot_neurons.clone(),
            steps: if with_snapshots { self.steps.clone() } else { Vec::new() },
            pos,
            neg,
            snapshots: if with_snapshots { self.snapshots.clone() } else { vec![Vec::new(); self.layers.len()] },
            position_choice: Vec::new(),
            position_pos: Vec::new(),
            position_neg: Vec::new(),
        }
    }

    pub fn from_state(state: RecorderState, device: &Device) -> Self {
        let inner = device.clone().inner();
        let upload = |v: Vec<f32>, l: &LayerInfo| Tensor::<2>::from_data(TensorData::new(v, [state.items, l.neurons]), &inner);
        let pos = state.pos.into_iter().zip(&state.layers).map(|(v, l)| upload(v, l)).collect();
        let neg = state.neg.into_iter().zip(&state.layers).map(|(v, l)| upload(v, l)).collect();
        let positions = (!state.position_choice.is_empty()).then(|| {
            let upload = |v: &[Vec<f32>]| {
                v.iter()
                    .zip(&state.layers)
                    .map(|(v, l)| (!v.is_empty()).then(|| Tensor::<2>::from_data(TensorData::new(v.clone(), [v.len() / l.neurons.max(1), l.neurons]), &inner)))
                    .collect()
            };
            PositionCounts { choice: state.position_choice.clone(), pos: upload(&state.position_pos), neg: upload(&state.position_neg) }
        });
        Self {
            positions,
            mode: state.mode,
            layers: state.layers,
            items: state.items,
            tracked: state.tracked,
            certainty_epsilon: state.certainty_epsilon,
            pos,
            neg,
            recordings: state.recordings,
            snapshot_neurons: state.snapshot_neurons,
            steps: state.steps,
            snapshots: state.snapshots,
            deferred_reads: false,
            pending: Vec::new(),
        }
    }
}

/// A recorder's state on the host (checkpoints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecorderState {
    pub mode: RecordingMode,
    pub layers: Vec<LayerInfo>,
    pub items: usize,
    pub tracked: usize,
    pub certainty_epsilon: f32,
    pub recordings: usize,
    pub snapshot_neurons: Vec<Vec<usize>>,
    pub steps: Vec<u64>,
    pub pos: Vec<Vec<f32>>,
    pub neg: Vec<Vec<f32>>,
    pub snapshots: Vec<Vec<Vec<f32>>>,
    /// Per-position counting (see [`position_choice`]); empty when off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub position_choice: Vec<Vec<i64>>,
    /// Per layer `[items * k, neurons]` (empty for a layer without positions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub position_pos: Vec<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub position_neg: Vec<Vec<f32>>,
}

/// Why a saved recorder state could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("not a recorder state (bad magic)")]
    Magic,
    #[error("recorder state truncated: {0}")]
    Truncated(&'static str),
    #[error("recorder state header: {0}")]
    Header(#[from] serde_json::Error),
    #[error("recorder state: {0}")]
    Inconsistent(String),
}

const STATE_MAGIC: &[u8; 8] = b"HNREC01\n";

impl RecorderState {
    /// Compact binary form: magic, a JSON header without the big arrays, then the arrays as
    /// little-endian f32 (counts, then snapshots) in a fixed order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = RecorderState { pos: vec![], neg: vec![], snapshots: vec![], position_pos: vec![], position_neg: vec![], ..self.clone() };
        let json = serde_json::to_vec(&header).expect("header serializes");
        let mut out = Vec::with_capacity(16 + json.len());
        out.extend_from_slice(STATE_MAGIC);
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&json);
        let arrays = self.pos.iter().chain(&self.neg).chain(self.snapshots.iter().flatten()).chain(&self.position_pos).chain(&self.position_neg);
        for v in arrays {
            for x in v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        if bytes.len() < 16 || &bytes[..8] != STATE_MAGIC {
            return Err(StateError::Magic);
        }
        let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
        let json = bytes.get(16..16usize.saturating_add(len)).ok_or(StateError::Truncated("header"))?;
        let mut state: RecorderState = serde_json::from_slice(json)?;
        if state.snapshot_neurons.len() != state.layers.len() {
            return Err(StateError::Inconsistent("one snapshot neuron list per layer expected".into()));
        }
        let out_of_range = state.snapshot_neurons.iter().zip(&state.layers).any(|(k, l)| k.iter().any(|&n| n >= l.neurons));
        if out_of_range || state.tracked > state.items {
            return Err(StateError::Inconsistent("snapshot neurons or tracked samples out of range".into()));
        }
        let mut rest = &bytes[16 + len..];
        let mut take = |n: usize, what: &'static str| -> Result<Vec<f32>, StateError> {
            let need = n.checked_mul(4).ok_or(StateError::Truncated(what))?;
            if rest.len() < need {
                return Err(StateError::Truncated(what));
            }
            let (head, tail) = rest.split_at(need);
            rest = tail;
            Ok(head.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
        };
        let sizes: Vec<usize> = state.layers.iter().map(|l| state.items.saturating_mul(l.neurons)).collect();
        state.pos = sizes.iter().map(|&n| take(n, "positive counts")).collect::<Result<_, _>>()?;
        state.neg = sizes.iter().map(|&n| take(n, "negative counts")).collect::<Result<_, _>>()?;
        let tracked = state.tracked;
        let recordings = state.steps.len();
        state.snapshots = state
            .snapshot_neurons
            .iter()
            .map(|k| (0..recordings).map(|_| take(tracked.saturating_mul(k.len()), "snapshots")).collect())
            .collect::<Result<_, _>>()?;
        if !state.position_choice.is_empty() {
            if state.position_choice.len() != state.layers.len() {
                return Err(StateError::Inconsistent("one position choice per layer expected".into()));
            }
            let mut sizes = Vec::new();
            for (choice, l) in state.position_choice.iter().zip(&state.layers) {
                let n = l.neurons.max(1);
                let bad = choice.len() % n != 0 || choice.len() / n > l.positions || choice.iter().any(|&p| p < 0 || p as usize >= l.positions);
                if bad {
                    return Err(StateError::Inconsistent(format!("{}: position choice out of range", l.name)));
                }
                sizes.push(state.items.saturating_mul(choice.len()));
            }
            state.position_pos = sizes.iter().map(|&n| take(n, "position counts")).collect::<Result<_, _>>()?;
            state.position_neg = sizes.iter().map(|&n| take(n, "position counts")).collect::<Result<_, _>>()?;
        }
        if !rest.is_empty() {
            return Err(StateError::Inconsistent(format!("{} trailing bytes", rest.len())));
        }
        Ok(state)
    }
}
