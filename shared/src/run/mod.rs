//! A run, once for every model and both front ends: its [`spec`] (what it is), its [`session`]
//! (training step by step, recording), its [`progress`] (what a checkpoint holds beside the
//! weights), the [`events`] it emits to
//! observers, the experiments of [`analyze`], the one place that builds `results.json`,
//! [`assemble`], and [`finish`] for a run held in memory. The trainer and the page's worker only drive it and observe it.

pub mod analyze;
pub mod assemble;
pub mod events;
pub mod finish;
pub mod progress;
pub mod seeds;
pub mod session;
pub mod spec;

pub use analyze::{AnalysisData, InMemorySets, LayerAnalysis, Part, Unit, UnitResult, analyze, analyze_unit, costliest_first, merge, units};
pub use assemble::{Outcome, results};
pub use events::{All, EpochState, Event, Observer, ObserverError, Quiet};
pub use finish::{Finished, finish_in_memory};
pub use progress::Progress;
pub use session::{RunError, Session, StepOut};
pub use spec::{CHUNK, DataSpec, Family, ModelId, Network, Overrides, Preset, RunSpec};
