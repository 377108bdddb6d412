//! One Adam step on burn's flex backend: a single pass over a parameter, its gradient and its
//! two moments, updating the three in place where flex owns them alone (a copy otherwise), the
//! elements shared out between the threads.

use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::Coefficients;
use crate::flex_slices::{slice, tensor};

/// Elements per task: 256 KB of each of the four arrays, enough to be worth a thread.
const CHUNK: usize = 1 << 16;

/// The new parameter and moments. All four tensors are f32 with the same number of elements.
pub fn step(param: FlexTensor, grad: FlexTensor, moment_1: FlexTensor, moment_2: FlexTensor, c: Coefficients) -> (FlexTensor, FlexTensor, FlexTensor) {
    let grad = grad.to_contiguous();
    let g = slice(&grad);
    let (mut p, mut m, mut v) = (writable(param), writable(moment_1), writable(moment_2));
    let (ps, ms, vs) = (elements(&mut p), elements(&mut m), elements(&mut v));
    assert!(ps.len() == g.len() && ms.len() == g.len() && vs.len() == g.len(), "Adam: parameter, gradient and moments differ in size");
    let run = |((p, m), v): ((&mut [f32], &mut [f32]), &mut [f32]), g: &[f32]| {
        for i in 0..g.len() {
            (p[i], m[i], v[i]) = c.update(p[i], g[i], m[i], v[i]);
        }
    };
    if g.len() <= CHUNK {
        run(((ps, ms), vs), g);
    } else {
        ps.par_chunks_mut(CHUNK).zip(ms.par_chunks_mut(CHUNK)).zip(vs.par_chunks_mut(CHUNK)).zip(g.par_chunks(CHUNK)).for_each(|(pmv, g)| run(pmv, g));
    }
    (p, m, v)
}

/// `t` as a contiguous tensor whose storage is exactly its elements, so it can be written in
/// place: `t` itself where it already is one (flex copies it on write if it is shared).
fn writable(t: FlexTensor) -> FlexTensor {
    let whole = t.layout().contiguous_offsets() == Some((0, t.storage::<f32>().len()));
    if whole { t } else { tensor(slice(&t.to_contiguous()).to_vec(), t.layout().shape().to_vec()) }
}

fn elements(t: &mut FlexTensor) -> &mut [f32] {
    t.storage_mut::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each element is `Coefficients::update` of its own inputs, across chunk boundaries and
    /// for a parameter that flex shares with another tensor (which must keep its values).
    #[test]
    fn every_element_takes_its_own_update_and_shared_inputs_stay_untouched() {
        let c = Coefficients { beta_1: 0.9, beta_2: 0.999, step: 0.7, epsilon: 1e-7, lr: 0.01 };
        let n = 2 * CHUNK + 17;
        let make = |k: f32| (0..n).map(|i| ((i as f32) * 0.37 + k).sin()).collect::<Vec<f32>>();
        let (p0, g0, m0, v0) = (make(0.0), make(1.0), make(2.0), make(3.0).iter().map(|x| x * x).collect::<Vec<_>>());
        let param = tensor(p0.clone(), [n]);
        let kept = param.clone();
        let (p, m, v) = step(param, tensor(g0.clone(), [n]), tensor(m0.clone(), [n]), tensor(v0.clone(), [n]), c);
        let (p, m, v) = (slice(&p), slice(&m), slice(&v));
        for i in 0..n {
            let want = c.update(p0[i], g0[i], m0[i], v0[i]);
            assert_eq!((p[i], m[i], v[i]), want, "element {i}");
        }
        assert_eq!(slice(&kept), &p0[..], "the shared parameter was written through");
    }
}
