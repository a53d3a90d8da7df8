//! A minimal owned f32 tensor: a shape plus row-major data.
//!
//! This is the user-facing currency of the engine (model input, logits, captured
//! activations). The constructor checks that the data length equals the product of the shape,
//! so code holding a `Tensor` can rely on that invariant.

use crate::error::{Error, Result};

/// Row-major (C order) f32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// Builds a tensor, checking `data.len() == product(shape)`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor> {
        let numel = checked_numel(&shape)
            .ok_or_else(|| Error::shape("tensor", "a shape whose size fits usize", &shape))?;
        if numel != data.len() {
            return Err(Error::shape(
                format!("tensor data of shape {shape:?}"),
                numel,
                data.len(),
            ));
        }
        Ok(Tensor { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: Vec<usize>) -> Result<Tensor> {
        let numel = checked_numel(&shape)
            .ok_or_else(|| Error::shape("tensor", "a shape whose size fits usize", &shape))?;
        Ok(Tensor {
            shape,
            data: vec![0.0; numel],
        })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Product of the dimensions, `None` on overflow.
pub(crate) fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}
