//! Test and benchmark harness package; see tests/ and benches/.
