//! Configuration: raw TOML structs (`raw`), the typed config everything else
//! uses (`types`), and the conversion between them (`convert`, `Config::from_raw`)
//! with errors that name the key and its line:column (`load`); `reload`
//! says which changes between two configs need a restart.
//!
//! ```text
//! lb.toml --toml+serde--> raw::Config --from_raw--> Config
//!              \____________ ConfigErrors ____________/
//! ```

mod convert;
mod load;
pub mod raw;
mod reload;
#[cfg(test)]
mod tests;
mod types;
mod values;

pub use load::{ConfigError, ConfigErrors, load, parse};
pub use reload::live_change_errors;
pub use types::*;
