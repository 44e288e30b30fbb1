//! Losses and their gradients with respect to the predictions (`shaders/loss.wgsl`).

use bytemuck::{Pod, Zeroable};

use super::{
    LOG1P_WGSL, Reduction, WORKGROUP_REDUCE_WGSL, check_input, check_row_loops, fits_u32,
    reduce_all, rows_cols,
};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::tensor::{DType, Tensor};

const SOURCES: &[&str] = &[
    WORKGROUP_REDUCE_WGSL,
    LOG1P_WGSL,
    include_str!("../../shaders/loss.wgsl"),
];
const BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
];

/// A loss over predictions `[rows, cols]`, as PyTorch defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Softmax cross-entropy (`CrossEntropyLoss`); targets are class indices `[rows]`. Mean over
    /// rows.
    CrossEntropy,
    /// Squared error (`MSELoss`); targets `[rows, cols]`. Mean over elements.
    MeanSquaredError,
    /// Binary hinge `max(0, 1 - t y)`; targets `[rows, cols]` in {-1, 1}. Mean over elements.
    Hinge,
    /// Multiclass margin (`MultiMarginLoss`, margin 1): per row
    /// `Σ_{j≠t} max(0, 1 - y_t + y_j) / cols`; targets are class indices `[rows]`. Mean over rows.
    MultiMargin,
}

impl std::str::FromStr for Loss {
    type Err = Error;

    /// `cross-entropy`, `mse`, `hinge` or `multi-margin`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cross-entropy" | "ce" => Ok(Loss::CrossEntropy),
            "mse" => Ok(Loss::MeanSquaredError),
            "hinge" => Ok(Loss::Hinge),
            "multi-margin" => Ok(Loss::MultiMargin),
            _ => Err(Error::invalid(
                "loss",
                format!("`{s}`: use cross-entropy, mse, hinge or multi-margin"),
            )),
        }
    }
}

impl Loss {
    fn kind(self) -> u32 {
        match self {
            Loss::CrossEntropy => 0,
            Loss::MeanSquaredError => 1,
            Loss::Hinge => 2,
            Loss::MultiMargin => 3,
        }
    }

    /// Whether targets are class indices (one per row) rather than values per output.
    pub fn takes_class_indices(self) -> bool {
        matches!(self, Loss::CrossEntropy | Loss::MultiMargin)
    }
}

/// The loss and its gradient.
#[derive(Clone, Debug)]
pub struct LossOutput {
    /// The reduced loss, shape `[1]` (read it back only when the host needs it).
    pub loss: Tensor,
    /// d loss / d predictions, the predictions' shape.
    pub grad: Tensor,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    grad_scale: f32,
    nan_bits: u32,
}

/// The loss of `pred` against `target` with `reduction` (`Mean` or `Sum`), and its gradient.
///
/// Class indices are given as f32 values (exact below 2^24). One that is not a whole number in
/// `0..cols` gives its row a NaN loss and gradient, checked nowhere else on the GPU: validate
/// labels when they are read (the data loaders do).
pub fn loss(
    pred: &Tensor,
    target: &Tensor,
    kind: Loss,
    reduction: Reduction,
) -> Result<LossOutput> {
    const OP: &str = "loss";
    check_input(OP, pred, pred)?;
    check_input(OP, pred, target)?;
    let (rows, cols) = rows_cols(OP, pred)?;
    check_row_loops(OP, pred, cols, 3)?;
    if pred.shape().len() != 2 || rows == 0 || cols == 0 {
        return Err(Error::shape(
            OP,
            format!(
                "predictions must be a non-empty [rows, cols] matrix, got {:?}",
                pred.shape()
            ),
        ));
    }
    let want_target: Vec<usize> = if kind.takes_class_indices() {
        vec![rows]
    } else {
        vec![rows, cols]
    };
    if target.shape() != want_target {
        return Err(Error::shape(
            OP,
            format!(
                "{kind:?} needs targets of shape {want_target:?} for predictions {:?}, got {:?}",
                pred.shape(),
                target.shape()
            ),
        ));
    }
    let count = match (kind, reduction) {
        (_, Reduction::Sum) => 1.0,
        (_, Reduction::Mean) if kind.takes_class_indices() => rows as f32,
        (_, Reduction::Mean) => (rows * cols) as f32,
        _ => {
            return Err(Error::invalid(
                OP,
                format!("reduction must be Mean or Sum, got {reduction:?}"),
            ));
        }
    };
    let gpu = pred.gpu();
    let row_loss = Tensor::uninit(gpu, &[rows], DType::F32)?;
    let grad = Tensor::uninit(gpu, pred.shape(), DType::F32)?;
    let params = Params {
        rows: fits_u32(OP, "elements", pred.len()).map(|_| rows as u32)?,
        cols: cols as u32,
        grad_scale: 1.0 / count,
        nan_bits: f32::NAN.to_bits(),
    };
    gpu.dispatch(
        &KernelSpec::new(OP, SOURCES, OP, BINDINGS).with("KIND", Const::U32(kind.kind())),
        bytemuck::bytes_of(&params),
        &[
            pred.binding(),
            target.binding(),
            row_loss.binding(),
            grad.binding(),
        ],
        gpu.grid(rows as u64)?,
    )?;
    let total = reduce_all(&row_loss, Reduction::Sum)?;
    let loss = if count == 1.0 {
        total
    } else {
        super::scale(&total, 1.0 / count)?
    };
    Ok(LossOutput { loss, grad })
}
