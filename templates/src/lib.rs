//! Message templates for kontaktvei: one template per notice kind × channel (sms, letter, relay,
//! outreach, staff e-mail) × language (nb, nn, en, se, …), shipped as files in this folder and
//! overridable per organisation, and the code that loads, validates and renders them.
//!
//! This crate sits at the bottom of the dependency arrows (gateway → scheduler → channels →
//! templates) and depends on none of them. Its contents arrive with the templates issue; until
//! then the channels write a plain bokmål text per notice kind.
