//! Handler configuration: building blocks shared by every handler's settings (`values`).

pub mod values;
