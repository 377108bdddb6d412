//! The in-browser page. The page and the worker talk through [`protocol`]; the page's state lives
//! in the URL ([`url_state`]); [`form`] reads and checks its settings form. The UI ([`page`]) and
//! the training worker ([`worker`]) exist only in WebAssembly builds. The worker comes in two
//! builds: `worker` (CPU only) and `worker_gpu` (with the `webgpu` feature: burn's wgpu stack,
//! most of its size), which the page fetches only for a run on a WebGPU adapter.

pub mod form;
pub mod protocol;
pub mod url_state;

#[cfg(target_arch = "wasm32")]
pub mod adapter;
#[cfg(target_arch = "wasm32")]
pub mod page;
#[cfg(target_arch = "wasm32")]
pub mod worker;
