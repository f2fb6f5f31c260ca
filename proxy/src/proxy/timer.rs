//! Per-core coarse timers for I/O deadlines.
//!
//! Every read and write on the data path runs under a deadline, and almost
//! every deadline is cancelled because the operation finished first. compio's
//! own timers keep a `BTreeMap` keyed by `Instant` and read the clock on every
//! insert and on every turn of the event loop; at ~4 deadlines per request
//! that was ~8% of the proxy's CPU per small request. Here a deadline is a
//! slot in a slab plus an index in a hashed wheel of `TICK`-wide buckets:
//! arming and cancelling are a few stores, no clock read, no allocation in
//! steady state.
//!
//! Worker cores run their runtime through [`block_on`], whose event loop
//! turns the wheel itself after each wait for completions: one clock read
//! per loop turn while timers are armed, none while they are not. Anywhere
//! else (tests, other runtimes) a ticker task (a single compio sleep) turns
//! it while timers are armed and parks when none are. The event loop is the
//! cheaper of the two by far: a compio sleep, even a single one, makes every
//! loop turn read the clock twice and split a `BTreeMap` (an allocation and
//! a free), ~1,700 instructions per small request.
//!
//! Resolution is `TICK`: a deadline fires between 0 and ~2 ticks late, which
//! is far below any timeout a proxy configures.
//!
//! The wheel is thread-local: each worker core is one thread with one
//! runtime. The ticker is spawned on the runtime that first arms a timer;
//! if that runtime goes away (tests run several in turn on one thread) the
//! wheel is reset and the next timer spawns a new ticker.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Width of one wheel bucket.
const TICK: Duration = Duration::from_millis(10);
const TICK_NANOS: u64 = TICK.as_nanos() as u64;
/// Buckets in the wheel (one revolution = `SLOTS` × `TICK`; later deadlines
/// wait in their bucket for further revolutions).
const SLOTS: usize = 256;

struct Entry {
    /// Tick at or after which the timer fires.
    due: u64,
    /// Bumped on release, so a stale key is recognised.
    generation: u32,
    /// Position in `buckets[due % SLOTS]` while armed.
    pos: u32,
    armed: bool,
    fired: bool,
    waker: Option<Waker>,
}

struct Wheel {
    /// Tick 0.
    base: Instant,
    /// Last tick processed (timers due at or before it have fired).
    current: u64,
    /// Coarse clock: refreshed on every tick and whenever it is read while
    /// the ticker is parked.
    now: Instant,
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Armed entries by `due % SLOTS`. A released timer is removed from its
    /// bucket at once (swap-remove; the moved entry's `pos` is fixed up), so
    /// the wheel holds exactly the armed timers: under load nearly every
    /// timer is released long before it is due, and lazy removal would keep
    /// a reference per request for a whole timeout.
    buckets: Vec<Vec<u32>>,
    armed: usize,
    ticker: TickerState,
}

enum TickerState {
    /// No ticker task on this thread's runtime.
    None,
    Running,
    /// The ticker waits for a timer to be armed.
    Parked(Waker),
    /// No ticker: [`block_on`]'s event loop turns the wheel.
    Driven,
}

impl Wheel {
    fn new() -> Self {
        let now = Instant::now();
        Wheel {
            base: now,
            current: 0,
            now,
            entries: Vec::new(),
            free: Vec::new(),
            buckets: (0..SLOTS).map(|_| Vec::new()).collect(),
            armed: 0,
            ticker: TickerState::None,
        }
    }

    /// Nanoseconds from tick 0 to `t` (0 before it), in 64 bits: 128-bit
    /// `Duration::as_nanos` arithmetic costs a library division per call.
    fn nanos_since_base(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.base);
        d.as_secs().saturating_mul(1_000_000_000).saturating_add(u64::from(d.subsec_nanos()))
    }

    fn tick_of(&self, t: Instant) -> u64 {
        // Round up: a timer never fires before its deadline's tick.
        self.nanos_since_base(t).div_ceil(TICK_NANOS)
    }

    fn arm(&mut self, deadline: Instant) -> Option<(u32, u32)> {
        let due = self.tick_of(deadline);
        if due <= self.current {
            return None;
        }
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry { due: 0, generation: 0, pos: 0, armed: false, fired: false, waker: None });
                (self.entries.len() - 1) as u32
            }
        };
        let bucket = &mut self.buckets[due as usize % SLOTS];
        let e = &mut self.entries[idx as usize];
        e.due = due;
        e.armed = true;
        e.fired = false;
        e.pos = bucket.len() as u32;
        bucket.push(idx);
        self.armed += 1;
        Some((idx, e.generation))
    }

    /// Takes an armed entry out of its bucket.
    fn unlink(&mut self, idx: u32) {
        let e = &self.entries[idx as usize];
        let bucket = &mut self.buckets[e.due as usize % SLOTS];
        let pos = e.pos as usize;
        bucket.swap_remove(pos);
        if let Some(&moved) = bucket.get(pos) {
            self.entries[moved as usize].pos = pos as u32;
        }
        self.entries[idx as usize].armed = false;
        self.armed -= 1;
    }

    fn release(&mut self, (idx, generation): (u32, u32)) {
        // A key from before a reset (its runtime ended) may not exist.
        let Some(e) = self.entries.get(idx as usize) else { return };
        if e.generation != generation {
            return;
        }
        if e.armed {
            self.unlink(idx);
        }
        let e = &mut self.entries[idx as usize];
        e.generation = e.generation.wrapping_add(1);
        e.waker = None;
        self.free.push(idx);
    }

    /// Refreshes the coarse clock and fires what is due (outside a borrow of
    /// the wheel, call the collected wakers).
    fn turn(&mut self, wake: &mut Vec<Waker>) {
        let now = Instant::now();
        self.now = now;
        let now_tick = self.nanos_since_base(now) / TICK_NANOS;
        self.advance(now_tick, wake);
    }

    /// How long the event loop may wait for completions before the wheel's
    /// next tick is due; `None` while no timer is armed.
    fn next_wait(&self) -> Option<Duration> {
        if self.armed == 0 {
            return None;
        }
        let next = self.base + Duration::from_nanos((self.current + 1).saturating_mul(TICK_NANOS));
        Some(next.saturating_duration_since(self.now))
    }

    /// Fires every timer due by `now_tick`, collecting the wakers to call
    /// (outside the borrow).
    fn advance(&mut self, now_tick: u64, wake: &mut Vec<Waker>) {
        let from = self.current + 1;
        // After a long stall, one pass over every bucket is enough.
        let to = now_tick.min(self.current + SLOTS as u64);
        for t in from..=to {
            let slot = t as usize % SLOTS;
            let mut i = 0;
            while i < self.buckets[slot].len() {
                let idx = self.buckets[slot][i];
                if self.entries[idx as usize].due > now_tick {
                    // Due in a later revolution.
                    i += 1;
                    continue;
                }
                // Swap-remove puts another entry at `i`: look at it next.
                self.unlink(idx);
                let e = &mut self.entries[idx as usize];
                e.fired = true;
                if let Some(w) = e.waker.take() {
                    wake.push(w);
                }
            }
        }
        self.current = now_tick;
    }
}

thread_local! {
    static WHEEL: RefCell<Wheel> = RefCell::new(Wheel::new());
}

/// The coarse current time (at most one tick old while timers are armed).
pub fn now() -> Instant {
    WHEEL.with_borrow_mut(|w| {
        // The clock is refreshed by every turn of the wheel while timers
        // are armed; otherwise nothing refreshes it.
        let turning = w.armed > 0 && matches!(w.ticker, TickerState::Running | TickerState::Driven);
        if !turning {
            w.now = Instant::now();
        }
        w.now
    })
}

/// Runs `fut` to completion on `rt` (as `Runtime::block_on` does), with the
/// event loop turning this thread's wheel after each wait for completions,
/// so no ticker task is needed. The wheel is reset when it returns.
pub fn block_on<F: Future>(rt: &compio::runtime::Runtime, fut: F) -> F::Output {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            let _ = WHEEL.try_with(|w| {
                if let Ok(mut w) = w.try_borrow_mut() {
                    *w = Wheel::new();
                }
            });
        }
    }
    WHEEL.with_borrow_mut(|w| {
        *w = Wheel::new();
        w.ticker = TickerState::Driven;
    });
    let _reset = Reset;
    rt.enter(|| {
        let waker = rt.waker();
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        let mut wake = Vec::new();
        loop {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                rt.run();
                return out;
            }
            let timeout = if rt.run() {
                // Tasks are still runnable: only collect what completed.
                Some(Duration::ZERO)
            } else {
                let wheel = WHEEL.with_borrow(|w| w.next_wait());
                // compio's own timers (any compio sleep on this thread) too.
                match (wheel, rt.current_timeout()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            };
            rt.poll_with(timeout);
            WHEEL.with_borrow_mut(|w| {
                if w.armed > 0 {
                    w.turn(&mut wake);
                }
            });
            for w in wake.drain(..) {
                w.wake();
            }
        }
    })
}

/// Runs `fut` until `deadline`; `Err(Elapsed)` if the deadline passed first
/// (the future is then dropped, which cancels its I/O).
pub fn timeout_at<F: Future>(deadline: Instant, fut: F) -> Timeout<F> {
    Timeout { fut, deadline, key: None, state: State::New }
}

/// [`timeout_at`] with a duration from the coarse now.
pub fn timeout<F: Future>(dur: Duration, fut: F) -> Timeout<F> {
    timeout_at(now() + dur, fut)
}

/// Waits `dur` on the wheel. The worker thread sleeps only this way: a
/// single pending compio sleep makes every turn of its event loop read the
/// clock twice and split compio's timer tree.
pub async fn sleep(dur: Duration) {
    let _ = timeout(dur, std::future::pending::<()>()).await;
}

/// The deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

enum State {
    New,
    Armed,
    Expired,
}

pin_project_lite::pin_project! {
    /// Future returned by [`timeout_at`].
    pub struct Timeout<F> {
        #[pin]
        fut: F,
        deadline: Instant,
        key: Option<(u32, u32)>,
        state: State,
    }

    impl<F> PinnedDrop for Timeout<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(key) = this.key.take() {
                // The thread-local may be gone at thread exit: then so is the wheel.
                let _ = WHEEL.try_with(|w| w.borrow_mut().release(key));
            }
        }
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match this.state {
            State::Expired => return Poll::Ready(Err(Elapsed)),
            State::New => match WHEEL.with_borrow_mut(|w| w.arm(*this.deadline)) {
                Some(key) => {
                    *this.key = Some(key);
                    *this.state = State::Armed;
                }
                None => {
                    *this.state = State::Expired;
                    return Poll::Ready(Err(Elapsed));
                }
            },
            State::Armed => {}
        }
        let key = this.key.expect("armed timer has a key");
        let (fired, start_ticker) = WHEEL.with_borrow_mut(|w| {
            let e = &mut w.entries[key.0 as usize];
            if e.fired {
                return (true, None);
            }
            match &e.waker {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => e.waker = Some(cx.waker().clone()),
            }
            if matches!(w.ticker, TickerState::Running | TickerState::Driven) {
                return (false, None);
            }
            match std::mem::replace(&mut w.ticker, TickerState::Running) {
                TickerState::Parked(t) => (false, Some(Some(t))),
                _ => (false, Some(None)),
            }
        });
        if fired {
            *this.state = State::Expired;
            return Poll::Ready(Err(Elapsed));
        }
        match start_ticker {
            Some(Some(parked)) => parked.wake(),
            Some(None) => compio::runtime::spawn(ticker()).detach(),
            None => {}
        }
        Poll::Pending
    }
}

/// Clears the wheel when the ticker task is dropped (its runtime ended), so
/// a later runtime on this thread starts afresh.
struct TickerGuard;

impl Drop for TickerGuard {
    fn drop(&mut self) {
        let _ = WHEEL.try_with(|w| {
            if let Ok(mut w) = w.try_borrow_mut() {
                *w = Wheel::new();
            }
        });
    }
}

async fn ticker() {
    let _guard = TickerGuard;
    let mut wake = Vec::new();
    loop {
        compio::time::sleep(TICK).await;
        let parked = WHEEL.with_borrow_mut(|w| {
            w.turn(&mut wake);
            w.armed == 0
        });
        for waker in wake.drain(..) {
            waker.wake();
        }
        if parked {
            Park.await;
        }
    }
}

/// Parks the ticker until a timer is armed.
struct Park;

impl Future for Park {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        WHEEL.with_borrow_mut(|w| {
            if w.armed > 0 {
                // A timer was armed (which set the state back to Running).
                w.ticker = TickerState::Running;
                return Poll::Ready(());
            }
            w.ticker = TickerState::Parked(cx.waker().clone());
            Poll::Pending
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> compio::runtime::Runtime {
        compio::runtime::Runtime::new().unwrap()
    }

    #[test]
    fn a_finished_future_wins_and_releases_its_slot() {
        rt().block_on(async {
            for _ in 0..1000 {
                let r = timeout(Duration::from_secs(5), compio::time::sleep(Duration::from_micros(1))).await;
                assert_eq!(r, Ok(()));
            }
            WHEEL.with_borrow(|w| {
                assert_eq!(w.armed, 0);
                // Released timers leave nothing behind in the buckets.
                assert_eq!(w.buckets.iter().map(Vec::len).sum::<usize>(), 0);
                // Slots are reused: a thousand sequential timers need one.
                assert!(w.entries.len() <= 2, "{} entries", w.entries.len());
            });
        });
    }

    /// A 50 ms deadline on a future that never finishes: not before.
    async fn times_out_at_its_deadline() {
        let t0 = Instant::now();
        let r = timeout(Duration::from_millis(50), std::future::pending::<()>()).await;
        let took = t0.elapsed();
        assert_eq!(r, Err(Elapsed));
        assert!(took >= Duration::from_millis(50), "fired early: {took:?}");
    }

    /// `n` tasks with deadlines `step`, 2 × `step`, … apart, started in
    /// reverse: the order in which they time out.
    async fn firing_order(n: u64, step: Duration) -> Vec<u64> {
        let order = std::rc::Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in (0..n).rev() {
            let order = order.clone();
            tasks.push(compio::runtime::spawn(async move {
                let r = timeout(step * (i as u32 + 1), std::future::pending::<()>()).await;
                assert_eq!(r, Err(Elapsed));
                order.borrow_mut().push(i);
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        order.borrow().clone()
    }

    #[test]
    fn the_event_loop_turns_the_wheel_without_a_ticker() {
        let rt = rt();
        let order = block_on(&rt, async {
            times_out_at_its_deadline().await;
            let order = firing_order(6, Duration::from_millis(20)).await;
            // No ticker task was ever started.
            assert!(WHEEL.with_borrow(|w| matches!(w.ticker, TickerState::Driven)));
            order
        });
        assert_eq!(order, (0..6).collect::<Vec<_>>());
        assert!(WHEEL.with_borrow(|w| matches!(w.ticker, TickerState::None)), "reset after block_on");
    }

    #[test]
    fn sleep_waits_on_the_wheel_not_on_compio_timers() {
        let rt = rt();
        block_on(&rt, async {
            let t0 = Instant::now();
            let sleeper = compio::runtime::spawn(sleep(Duration::from_millis(40)));
            // Let it arm.
            compio::runtime::spawn(async {}).await.unwrap();
            assert_eq!(compio::runtime::Runtime::with_current(|rt| rt.current_timeout()), None);
            assert_eq!(WHEEL.with_borrow(|w| w.armed), 1);
            sleeper.await.unwrap();
            assert!(t0.elapsed() >= Duration::from_millis(40), "{:?}", t0.elapsed());
        });
    }

    #[test]
    fn the_event_loop_still_honours_compio_sleeps() {
        let rt = rt();
        block_on(&rt, async {
            // Nothing armed in the wheel: the loop must wait for compio's timer, not forever.
            let t0 = Instant::now();
            compio::time::sleep(Duration::from_millis(30)).await;
            assert!(t0.elapsed() >= Duration::from_millis(30));
            // Both at once: the nearer deadline wins.
            let r = timeout(Duration::from_secs(5), compio::time::sleep(Duration::from_millis(20))).await;
            assert_eq!(r, Ok(()));
        });
    }

    #[test]
    fn a_pending_future_times_out_near_its_deadline() {
        rt().block_on(times_out_at_its_deadline());
    }

    #[test]
    fn deadlines_beyond_one_revolution_wait_for_it() {
        // 256 × 10 ms = 2.56 s per revolution: a 3 s deadline sits in the
        // bucket of 0.44 s and must survive that pass.
        rt().block_on(async {
            let long = timeout(Duration::from_secs(3), std::future::pending::<()>());
            let t0 = Instant::now();
            assert_eq!(long.await, Err(Elapsed));
            assert!(t0.elapsed() >= Duration::from_secs(3), "fired after {:?}", t0.elapsed());
        });
    }

    #[test]
    fn many_timers_fire_in_deadline_order() {
        let order = rt().block_on(firing_order(8, Duration::from_millis(30)));
        assert_eq!(order, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn the_ticker_parks_when_idle_and_wakes_for_a_new_timer() {
        rt().block_on(async {
            assert_eq!(timeout(Duration::from_millis(20), std::future::pending::<()>()).await, Err(Elapsed));
            // Let the ticker see an empty wheel and park.
            compio::time::sleep(Duration::from_millis(50)).await;
            assert!(WHEEL.with_borrow(|w| matches!(w.ticker, TickerState::Parked(_))));
            let t0 = Instant::now();
            assert_eq!(timeout(Duration::from_millis(30), std::future::pending::<()>()).await, Err(Elapsed));
            let took = t0.elapsed();
            assert!(took >= Duration::from_millis(30), "{took:?}");
        });
    }

    #[test]
    fn a_new_runtime_on_the_same_thread_gets_a_working_ticker() {
        for _ in 0..2 {
            rt().block_on(async {
                let r = timeout(Duration::from_millis(20), std::future::pending::<()>()).await;
                assert_eq!(r, Err(Elapsed));
            });
        }
    }

    #[test]
    fn releasing_timers_that_share_a_bucket_keeps_the_others_armed() {
        // Same deadline: all in one bucket; every other one is cancelled by
        // its future finishing first, which swap-removes it.
        rt().block_on(async {
            let fired = std::rc::Rc::new(std::cell::Cell::new(0));
            let mut tasks = Vec::new();
            for i in 0..64u64 {
                let fired = fired.clone();
                tasks.push(compio::runtime::spawn(async move {
                    let inner = async move {
                        if i % 2 == 0 {
                            compio::time::sleep(Duration::from_millis(5)).await;
                        } else {
                            std::future::pending::<()>().await;
                        }
                    };
                    if timeout(Duration::from_millis(200), inner).await.is_err() {
                        fired.set(fired.get() + 1);
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
            assert_eq!(fired.get(), 32);
            WHEEL.with_borrow(|w| {
                assert_eq!(w.armed, 0);
                assert_eq!(w.buckets.iter().map(Vec::len).sum::<usize>(), 0);
            });
        });
    }

    #[test]
    fn a_past_deadline_expires_at_once() {
        rt().block_on(async {
            let r = timeout_at(Instant::now() - Duration::from_secs(1), std::future::pending::<()>()).await;
            assert_eq!(r, Err(Elapsed));
        });
    }
}
