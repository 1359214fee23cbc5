pub mod check;
pub mod import;
pub mod plugins;
