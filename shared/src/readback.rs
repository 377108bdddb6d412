//! Reading device tensors back without blocking. The browser's WebGPU has no synchronous reads
//! (a blocking read panics there), so the web worker awaits these where the native trainer calls
//! the blocking [`crate::stats::read_f32`]. On a CPU backend the futures are ready at once.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Element, Int, Tensor, TensorData};

/// A device read that failed (a lost device, an out-of-memory on the GPU).
#[derive(Debug, thiserror::Error)]
#[error("reading a tensor back from the device failed: {0}")]
pub struct ReadbackError(String);

fn failed(e: impl std::fmt::Display) -> ReadbackError {
    ReadbackError(e.to_string())
}

/// `data`'s values as `E`, whatever the backend's element type (the blocking reads use it too).
pub fn values<E: Element>(data: TensorData) -> Result<Vec<E>, ReadbackError> {
    data.convert::<E>().try_into_vec::<E>().map_err(|e| ReadbackError(format!("{e:?}")))
}

pub async fn read_f32_async<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, ReadbackError> {
    values(t.into_data_async().await.map_err(failed)?)
}

pub async fn read_i64_async<const D: usize>(t: Tensor<D, Int>) -> Result<Vec<i64>, ReadbackError> {
    values(t.into_data_async().await.map_err(failed)?)
}

/// A copy of `module` whose float parameters live on `device`, read from their device with
/// awaited reads (`Module::to_device` between backends reads synchronously). Parameters keep
/// their ids and whether they require gradients, so the copy trains like the original.
pub async fn copy_module<M: Module>(module: &M, device: &Device) -> Result<M, ReadbackError> {
    #[derive(Default)]
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().flatten(0, D - 1));
        }
    }
    struct Load<'a> {
        values: std::vec::IntoIter<Vec<f32>>,
        device: &'a Device,
    }
    impl ModuleMapper for Load<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, old, mapper) = param.consume();
            let values = self.values.next().expect("one value per visited parameter, in the same order");
            let shape = old.shape();
            let new = Tensor::<D>::from_data(TensorData::new(values, shape), self.device);
            Param::from_mapped_value(id, new.set_require_grad(old.is_require_grad()), mapper)
        }
    }
    let mut collect = Collect::default();
    module.visit(&mut collect);
    let mut values = Vec::with_capacity(collect.0.len());
    for t in collect.0 {
        values.push(read_f32_async(t).await?);
    }
    Ok(module.clone().map(&mut Load { values: values.into_iter(), device }))
}
