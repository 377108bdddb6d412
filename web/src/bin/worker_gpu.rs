//! The training worker with burn's wgpu backend on WebGPU (trunk builds it to WebAssembly with
//! the `webgpu` feature; natively it does nothing).

fn main() {
    #[cfg(target_arch = "wasm32")]
    web::worker::start();
}
