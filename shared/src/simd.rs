//! Run-time AVX2 for the CPU kernels' inner loops.
//!
//! The crate is compiled for x86-64's baseline (SSE2, 4 lanes of f32), so that one binary runs on
//! any x86-64 CPU. Loops written over plain arrays of 8 lanes are compiled a second time with
//! AVX2 enabled, and [`with_avx2!`] picks that copy where the CPU has it (a cached flag, checked
//! once per call). The `*_on` functions it wraps are `#[inline(always)]`, so their bodies (and the
//! closures inside them) are compiled with the feature of the wrapper they land in.

/// `fn name / name_on(args) -> ret;`: `name` calls `name_on`, compiled with AVX2 where the CPU has
/// it. The form with `self: &Type` makes a method of the `impl` block the macro is invoked in.
macro_rules! with_avx2 {
    () => {};
    ($vis:vis fn $name:ident / $on:ident (self: &$self_ty:ty $(, $arg:ident : $ty:ty)*) $(-> $ret:ty)?; $($rest:tt)*) => {
        $vis fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2(this: &$self_ty $(, $arg: $ty)*) $(-> $ret)? {
                    this.$on($($arg),*)
                }
                // SAFETY: the CPU has AVX2.
                return unsafe { avx2(self $(, $arg)*) };
            }
            self.$on($($arg),*)
        }
        $crate::simd::with_avx2! { $($rest)* }
    };
    ($vis:vis fn $name:ident / $on:ident ($($arg:ident : $ty:ty),*) $(-> $ret:ty)?; $($rest:tt)*) => {
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $on($($arg),*)
                }
                // SAFETY: the CPU has AVX2.
                return unsafe { avx2($($arg),*) };
            }
            $on($($arg),*)
        }
        $crate::simd::with_avx2! { $($rest)* }
    };
}

pub(crate) use with_avx2;
