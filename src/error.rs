//! The one error type of the engine.
//!
//! Every fallible operation (loading a `.sepnet` file, running a model, preprocessing an image,
//! checking a golden bundle) returns [`Error`]. Variants are typed so callers (the CLI, the
//! wasm bindings, tests) can tell a hostile file from a wrong-shaped input without parsing
//! strings. Messages are single-line so the CLI can print `error: ...` on one line.

use thiserror::Error as ThisError;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, ThisError)]
pub enum Error {
    /// Reading a file failed (CLI and tests only; the library itself works on bytes).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    /// The bytes are not a well-formed safetensors file.
    #[error("not a safetensors file: {0}")]
    NotSafetensors(String),

    /// A required `__metadata__` key is absent.
    #[error("missing metadata key `{0}`")]
    MissingMetadata(String),

    /// A metadata value is present but malformed (bad JSON, wrong type, wrong magic, ...).
    #[error("bad metadata `{key}`: {reason}")]
    BadMetadata { key: String, reason: String },

    /// `sepnet.version` is not a version this reader understands.
    #[error("unsupported format version `{0}` (this reader understands version 1)")]
    UnsupportedVersion(String),

    /// The graph is malformed at the named node (unknown op, bad attribute, forward reference,
    /// shape that does not fit, ...). `node` is the node name, or `input`/`output`/`graph`.
    #[error("bad graph at `{node}`: {reason}")]
    BadGraph { node: String, reason: String },

    /// A tensor referenced by the graph is not in the file.
    #[error("missing tensor `{0}`")]
    MissingTensor(String),

    /// A referenced tensor exists but has the wrong dtype or shape.
    #[error("tensor `{name}` mismatch: expected {expected}, found {found}")]
    TensorMismatch {
        name: String,
        expected: String,
        found: String,
    },

    /// A `pattern` weight row has nonzero padding bits in its last byte.
    #[error("tensor `{tensor}`: nonzero padding bits in row {row}")]
    BadPadding { tensor: String, row: usize },

    /// A runtime tensor (user input or kernel argument) has the wrong shape or length.
    #[error("shape mismatch for {what}: expected {expected}, found {found}")]
    ShapeMismatch {
        what: String,
        expected: String,
        found: String,
    },

    /// A value exceeds one of the reader's limits (FORMAT.md section 3).
    #[error("limit exceeded: {what} is {value}, limit is {limit}")]
    LimitExceeded {
        what: String,
        value: u64,
        limit: u64,
    },

    /// A user-supplied argument is invalid (empty batch, bad `top_k`, unknown capture, ...).
    #[error("bad input: {0}")]
    BadInput(String),

    /// An image could not be decoded or has inconsistent dimensions.
    #[error("bad image: {0}")]
    BadImage(String),

    /// A golden bundle is malformed or does not fit the model.
    #[error("bad bundle: {0}")]
    BadBundle(String),
}

impl Error {
    pub(crate) fn graph(node: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::BadGraph {
            node: node.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn shape(
        what: impl Into<String>,
        expected: impl std::fmt::Debug,
        found: impl std::fmt::Debug,
    ) -> Self {
        Error::ShapeMismatch {
            what: what.into(),
            expected: format!("{expected:?}"),
            found: format!("{found:?}"),
        }
    }

    pub(crate) fn limit(what: impl Into<String>, value: u64, limit: u64) -> Self {
        Error::LimitExceeded {
            what: what.into(),
            value,
            limit,
        }
    }
}
