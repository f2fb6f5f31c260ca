//! Strict HTTP/1.1 message handling for the data path.
