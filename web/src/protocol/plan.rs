//! Where a run trains: the one backend decision, shared by the page and the worker.

use hidden_neurons::backend::{BackendChoice, GpuAdapter, decide};

/// The CPU backend's name, as the page and results.json show it.
pub const CPU_BACKEND: &str = "ndarray (CPU, WebAssembly)";

/// Where a run trains: burn's wgpu backend on the browser's WebGPU, or ndarray on the CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub webgpu: bool,
    /// For the page and results.json.
    pub name: String,
    /// Why, in one line for the user.
    pub note: String,
}

/// The one backend decision, made the same way on the page (to show it before training) and in
/// the worker (to act on it). `adapter` is what `navigator.gpu.requestAdapter()` gave.
pub fn plan(choice: BackendChoice, adapter: Option<&GpuAdapter>) -> Plan {
    let (webgpu, why) = decide(choice, adapter, "backend=", &format!("burn's {CPU_BACKEND} backend"));
    let name = match adapter {
        Some(a) if webgpu => format!("wgpu (WebGPU, {})", a.name),
        _ => CPU_BACKEND.to_string(),
    };
    let note = match (webgpu, adapter) {
        (true, _) => format!("{why}. Training runs on the GPU; the live figures and the analysis read its results back asynchronously and run on the CPU."),
        (false, None) => format!("No WebGPU adapter in this browser ({why})."),
        (false, Some(_)) => format!("WebGPU is there, but {why}."),
    };
    Plan { webgpu, name, note }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_names_the_backend_and_says_why() {
        let real = GpuAdapter { name: "NVIDIA H100".into(), api: "WebGPU".into(), software: false };
        let soft = GpuAdapter { name: "SwiftShader".into(), api: "WebGPU".into(), software: true };
        let p = plan(BackendChoice::Auto, Some(&real));
        assert!(p.webgpu && p.name.contains("WebGPU") && p.name.contains("H100"), "{p:?}");
        let p = plan(BackendChoice::Auto, Some(&soft));
        assert!(!p.webgpu && p.name == CPU_BACKEND && p.note.contains("WebGPU") && p.note.contains("software"), "{p:?}");
        let p = plan(BackendChoice::Auto, None);
        assert!(!p.webgpu && p.note.contains("No WebGPU"), "{p:?}");
        assert!(plan(BackendChoice::Wgpu, Some(&soft)).webgpu);
        assert!(!plan(BackendChoice::Cpu, Some(&real)).webgpu);
    }
}
