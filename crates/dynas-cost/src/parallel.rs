//! Data parallelism behind the `parallel` feature (on by default): with it, rayon's
//! prelude; without it, the same method names run sequentially on the calling thread, so
//! library code is written once.

#[cfg(feature = "parallel")]
pub use rayon::prelude::*;

#[cfg(not(feature = "parallel"))]
pub use sequential::*;

#[cfg(not(feature = "parallel"))]
mod sequential {
    /// `par_iter` on slices: a plain iterator.
    pub trait IntoParallelRefIterator<'a> {
        /// The iterator.
        type Iter: Iterator;
        /// Iterates sequentially.
        fn par_iter(&'a self) -> Self::Iter;
    }

    impl<'a, T: 'a> IntoParallelRefIterator<'a> for [T] {
        type Iter = std::slice::Iter<'a, T>;
        fn par_iter(&'a self) -> Self::Iter {
            self.iter()
        }
    }

    /// `par_iter_mut` on slices: a plain iterator.
    pub trait IntoParallelRefMutIterator<'a> {
        /// The iterator.
        type Iter: Iterator;
        /// Iterates sequentially.
        fn par_iter_mut(&'a mut self) -> Self::Iter;
    }

    impl<'a, T: 'a> IntoParallelRefMutIterator<'a> for [T] {
        type Iter = std::slice::IterMut<'a, T>;
        fn par_iter_mut(&'a mut self) -> Self::Iter {
            self.iter_mut()
        }
    }

    /// `par_chunks_mut` on slices: plain mutable chunks.
    pub trait ParallelSliceMut<T> {
        /// Iterates over `size`-element chunks sequentially.
        fn par_chunks_mut(&mut self, size: usize) -> std::slice::ChunksMut<'_, T>;
    }

    impl<T> ParallelSliceMut<T> for [T] {
        fn par_chunks_mut(&mut self, size: usize) -> std::slice::ChunksMut<'_, T> {
            self.chunks_mut(size)
        }
    }

    /// rayon's `map_init`: one state for the whole (sequential) run.
    pub trait MapInit: Iterator + Sized {
        /// Maps with a state made once by `init`.
        fn map_init<S, R>(
            self,
            init: impl FnOnce() -> S,
            mut f: impl FnMut(&mut S, Self::Item) -> R,
        ) -> impl Iterator<Item = R> {
            let mut state = init();
            self.map(move |item| f(&mut state, item))
        }
    }

    impl<I: Iterator> MapInit for I {}
}
