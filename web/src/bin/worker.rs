//! The training worker, CPU build (trunk builds it to WebAssembly; natively it does nothing).

fn main() {
    #[cfg(target_arch = "wasm32")]
    web::worker::start();
}
