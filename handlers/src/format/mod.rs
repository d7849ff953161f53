//! Output formats for results that leave as text: XML (`OutputType: Xml` of handlers, the API's
//! `?outputtype=xml`).

pub mod xml;
