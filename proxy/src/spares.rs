//! Objects a thread keeps for reuse (buffers, pipes, field vectors), so the
//! data path does not allocate them per request. Single-threaded: each
//! worker core has its own (in `WorkerCtx`, or a thread-local).

use std::cell::RefCell;

/// Up to `max` spare objects, handed out last in, first out.
pub(crate) struct Spares<T> {
    items: RefCell<Vec<T>>,
    max: usize,
}

impl<T> Spares<T> {
    pub(crate) const fn new(max: usize) -> Self {
        Spares { items: RefCell::new(Vec::new()), max }
    }

    pub(crate) fn take(&self) -> Option<T> {
        self.items.borrow_mut().pop()
    }

    /// Keeps `item` unless `max` are kept already (then it is dropped).
    #[inline]
    pub(crate) fn give(&self, item: T) {
        let _ = self.keep(item);
    }

    /// [`give`](Self::give) that hands a refused item back, for owners of
    /// raw memory, which must free it themselves.
    #[inline]
    pub(crate) fn keep(&self, item: T) -> Result<(), T> {
        let mut items = self.items.borrow_mut();
        if items.len() < self.max {
            items.push(item);
            return Ok(());
        }
        Err(item)
    }

    /// How many are kept now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.borrow().len()
    }
}
