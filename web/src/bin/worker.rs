//! The training worker (trunk builds it to WebAssembly; natively it does nothing).

fn main() {
    #[cfg(all(target_arch = "wasm32", feature = "webgpu"))]
    web::worker::start();
}
