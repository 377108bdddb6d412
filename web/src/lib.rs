//! The in-browser page. The page and the worker talk through [`protocol`]; the page's state lives
//! in the URL ([`url_state`]); [`form`] reads and checks its settings form. The UI ([`page`]) and
//! the training worker ([`worker`]) exist only in WebAssembly builds (the worker with the
//! `webgpu` feature).

pub mod form;
pub mod protocol;
pub mod url_state;

#[cfg(target_arch = "wasm32")]
pub mod page;
#[cfg(all(target_arch = "wasm32", feature = "webgpu"))]
pub mod worker;
