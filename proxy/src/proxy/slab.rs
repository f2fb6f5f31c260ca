//! Heap blocks a core reuses for its request futures.
//!
//! A connection's request state (`conn::serve_request`, ~2.1 KB) lives on
//! the heap only while a request is in progress, so an idle connection's
//! future stays small. A fresh `Box` per request is too large for glibc's
//! per-thread cache: each one went through `_int_malloc`/`_int_free`
//! (malloc and free were 2.7% of the worker's CPU under load, 1.75% with
//! these blocks), and the first store into a block malloc had just handed
//! out was the hottest instruction of the request code. Blocks given back
//! here are handed out again last-in first-out, so the next request writes
//! into memory that is still warm.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use crate::spares::Spares;

/// Spare blocks of one layout: the first one asked for (a core has one
/// request future type; any other is allocated and freed as usual).
pub struct Blocks {
    layout: Cell<Option<Layout>>,
    free: Spares<NonNull<u8>>,
}

impl Blocks {
    /// Keeps at most `max` spare blocks.
    pub fn new(max: usize) -> Self {
        Blocks { layout: Cell::new(None), free: Spares::new(max) }
    }

    /// Makes a future with `make` right in a block (a spare one if there is
    /// one) and pins it there; the block comes back here when the returned
    /// future is dropped.
    ///
    /// Taking a maker rather than the future lets the compiler build the
    /// future in the block: a future passed by value is built on the stack
    /// and then copied whole (an unstarted request future is a few words of
    /// arguments, but the copy was its full size, 2.6 KB then, every request).
    #[inline(always)]
    pub fn pin_with<F: Future>(&self, make: impl FnOnce() -> F) -> Recycled<'_, F> {
        let layout = Layout::new::<F>();
        let ptr = if layout.size() == 0 { NonNull::dangling() } else { self.alloc(layout).cast::<F>() };
        // SAFETY: `ptr` is valid for writes of one `F` (allocated or kept
        // with `F`'s layout, or dangling and well aligned for a zero-sized F).
        unsafe { ptr.as_ptr().write(make()) };
        Recycled { ptr, home: self }
    }

    /// The number of spare blocks kept now.
    #[cfg(test)]
    fn spare(&self) -> usize {
        self.free.len()
    }

    fn alloc(&self, layout: Layout) -> NonNull<u8> {
        if self.layout.get().is_none() {
            self.layout.set(Some(layout));
        }
        if self.layout.get() == Some(layout)
            && let Some(p) = self.free.take()
        {
            return p;
        }
        // SAFETY: the layout's size is not zero (checked by the caller).
        let p = unsafe { alloc::alloc(layout) };
        NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
    }

    fn give(&self, p: NonNull<u8>, layout: Layout) {
        let kept = if self.layout.get() == Some(layout) { self.free.keep(p) } else { Err(p) };
        if let Err(p) = kept {
            // SAFETY: `p` was allocated by `alloc` with this layout.
            unsafe { alloc::dealloc(p.as_ptr(), layout) };
        }
    }
}

impl Drop for Blocks {
    fn drop(&mut self) {
        if let Some(layout) = self.layout.get() {
            while let Some(p) = self.free.take() {
                // SAFETY: every kept block was allocated with `layout`.
                unsafe { alloc::dealloc(p.as_ptr(), layout) };
            }
        }
    }
}

/// A future pinned in a block of [`Blocks`] (like `Pin<Box<F>>`).
pub struct Recycled<'a, F: Future> {
    ptr: NonNull<F>,
    home: &'a Blocks,
}

impl<F: Future> Future for Recycled<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: the future was written at `ptr` in `pin` and stays there,
        // untouched by anyone else, until `drop` drops it in place.
        unsafe { Pin::new_unchecked(&mut *self.ptr.as_ptr()) }.poll(cx)
    }
}

impl<F: Future> Drop for Recycled<'_, F> {
    fn drop(&mut self) {
        let layout = Layout::new::<F>();
        // SAFETY: `ptr` holds the future written in `pin`; it is dropped
        // exactly once, here, and never used again.
        unsafe { self.ptr.as_ptr().drop_in_place() };
        if layout.size() != 0 {
            self.home.give(self.ptr.cast(), layout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// A future that finishes on its second poll and counts its drops.
    struct Probe {
        drops: Rc<Cell<u32>>,
        polled: bool,
        _payload: [u64; 8],
    }

    impl Future for Probe {
        type Output = u32;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
            if self.polled {
                return Poll::Ready(7);
            }
            self.polled = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.drops.set(self.drops.get() + 1);
        }
    }

    fn probe(drops: &Rc<Cell<u32>>) -> Probe {
        Probe { drops: Rc::clone(drops), polled: false, _payload: [0; 8] }
    }

    #[test]
    fn a_finished_future_is_dropped_once_and_its_block_reused() {
        let blocks = Blocks::new(4);
        let drops = Rc::new(Cell::new(0));
        let first = blocks.pin_with(|| probe(&drops));
        let addr = first.ptr.as_ptr() as usize;
        assert_eq!(run_to_end(first), 7);
        assert_eq!(drops.get(), 1);
        assert_eq!(blocks.spare(), 1);
        let second = blocks.pin_with(|| probe(&drops));
        assert_eq!(second.ptr.as_ptr() as usize, addr, "the spare block is handed out again");
        assert_eq!(blocks.spare(), 0);
        drop(second);
        assert_eq!(drops.get(), 2, "a future dropped before it finished is dropped in place too");
        assert_eq!(blocks.spare(), 1);
    }

    #[test]
    fn no_more_than_max_blocks_are_kept_and_other_layouts_are_not_pooled() {
        let blocks = Blocks::new(2);
        let drops = Rc::new(Cell::new(0));
        let held: Vec<_> = (0..5).map(|_| blocks.pin_with(|| probe(&drops))).collect();
        drop(held);
        assert_eq!(drops.get(), 5);
        assert_eq!(blocks.spare(), 2);
        // Another type (another layout) is allocated and freed as usual.
        let other = blocks.pin_with(|| async { [1u8; 3000].len() });
        assert_eq!(run_to_end(other), 3000);
        assert_eq!(blocks.spare(), 2);
    }

    /// Polls `fut` until it is ready (the probes wake themselves).
    fn run_to_end<F: Future + Unpin>(mut fut: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        loop {
            if let Poll::Ready(v) = Pin::new(&mut fut).poll(&mut cx) {
                return v;
            }
        }
    }
}
