//! Millisecond clock for per-layer timings, per platform.
//!
//! `std::time::Instant` panics on `wasm32-unknown-unknown`, so the executor takes a
//! [`Clock`] (a plain `fn() -> f64` returning milliseconds from an arbitrary origin) instead of
//! reading time itself. [`now_ms`] is the platform default: `Instant` natively, and on wasm the
//! global `performance.now()`, which browsers, workers and Node all provide. It is looked up via
//! `Reflect` on the global object so no `window` is needed; where it is missing, `Date.now()`
//! is used.

/// Milliseconds from an arbitrary, fixed origin.
pub type Clock = fn() -> f64;

/// A clock that always reads 0 (deterministic output, no timing).
pub fn no_clock() -> f64 {
    0.0
}

#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
}

#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> f64 {
    use wasm_bindgen::JsCast;

    thread_local! {
        static PERFORMANCE: Option<web_sys::Performance> = {
            js_sys::Reflect::get(&js_sys::global(), &"performance".into())
                .ok()
                .filter(|p| p.is_object())
                .map(|p| p.unchecked_into::<web_sys::Performance>())
        };
    }
    PERFORMANCE
        .with(|p| p.as_ref().map(|p| p.now()))
        .unwrap_or_else(js_sys::Date::now)
}
