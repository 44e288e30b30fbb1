//! # percept
//!
//! A GPU compute engine for MLP-family models on [wgpu] (Vulkan, Metal, DX12): WGSL compute
//! kernels in `shaders/`, typed launchers in [`ops`], and an f64 oracle for each of them in
//! [`reference`](mod@reference).
//!
//! ```
//! use percept::{Gpu, Tensor, ops};
//!
//! let gpu = Gpu::new()?; // the best adapter; honours WGPU_BACKEND and WGPU_ADAPTER_NAME
//! let a = Tensor::from_slice(&gpu, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
//! let b = Tensor::from_slice(&gpu, &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2])?;
//! let c = ops::matmul(&a, &b, &ops::MatmulSpec::default())?; // recorded, not yet run
//! assert_eq!(c.to_vec()?, vec![4.0, 5.0, 10.0, 11.0]);        // submits, waits, reads back
//! # Ok::<(), percept::Error>(())
//! ```
//!
//! Layers, bottom up: [`gpu`] (device, caches, submission), [`tensor`], [`ops`] (launchers),
//! [`reference`](mod@reference) (oracles), [`bench`](mod@bench) (the measurements behind `percept bench`).

pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod deeppcr;
pub mod deq;
pub mod error;
pub mod experiments;
pub mod files;
pub mod gpu;
pub mod model;
pub mod nn;
pub mod ops;
pub mod plot;
pub mod reference;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use gpu::{Gpu, GpuOptions, KernelTime, Tuning};
pub use tensor::{DType, Tensor};
