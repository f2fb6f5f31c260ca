//! Configuration: raw TOML structs (`raw`), the typed config everything else
//! uses (`types`), and the conversion between them with errors that name the
//! key and its line:column.

mod types;
pub use types::*;
