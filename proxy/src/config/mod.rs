//! Configuration: raw TOML structs (`raw`), the typed config everything else
//! uses (`types`), and the conversion between them (`convert`, a `TryFrom`)
//! with errors that name the key and its line:column (`load`).
//!
//! ```text
//! lb.toml --toml+serde--> raw::Config --TryFrom--> Config
//!              \____________ ConfigErrors ___________/
//! ```

mod convert;
mod load;
pub mod raw;
#[cfg(test)]
mod tests;
mod types;
mod values;

pub use load::{ConfigError, ConfigErrors, load, parse};
pub use types::*;
