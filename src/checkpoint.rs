//! Checkpoints in safetensors: parameters under their model's names (an MLP's as PyTorch's
//! `nn.Sequential` names them, `0.weight`, `0.bias`, ...; a DEQ's `cell.0.weight`, ...),
//! optimizer state as `optimizer.<state>.<parameter>`, extra 1-D tensors (e.g. the input
//! standardisation), and the configuration as JSON metadata. Written to a temporary file and
//! renamed, so a crash never leaves half a checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};
use crate::model::{Model, ModelConfig};
use crate::nn::{Optimizer, OptimizerConfig, OptimizerState, split};

/// The format's name predates DEQs (it holds any [`Model`] now); kept so earlier files load.
const FORMAT: &str = "percept.mlp.v1";

/// Everything a checkpoint holds.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The architecture.
    pub config: ModelConfig,
    /// Parameter values, one per tensor in the network's order.
    pub params: Vec<Vec<f32>>,
    /// Optimizer state, when saved.
    pub optimizer: Option<OptimizerState>,
    /// Extra named 1-D tensors.
    pub extra: BTreeMap<String, Vec<f32>>,
    /// Free-form string metadata (epoch, metrics, ...).
    pub metadata: BTreeMap<String, String>,
}

fn bytes(v: &[f32]) -> &[u8] {
    bytemuck::cast_slice(v)
}

/// Writes `model` (and `optimizer`, `extra`, `metadata`) to `path` atomically.
pub fn save_checkpoint(
    path: &Path,
    model: &Model,
    optimizer: Option<&Optimizer>,
    extra: &BTreeMap<String, Vec<f32>>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let infos = model.params().infos();
    let params = model.params().download()?;
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = infos
        .iter()
        .zip(params)
        .map(|(i, v)| (i.name.clone(), i.shape.clone(), v))
        .collect();
    let mut meta: HashMap<String, String> = metadata.clone().into_iter().collect();
    meta.insert("format".into(), FORMAT.into());
    meta.insert(
        "model".into(),
        serde_json::to_string(&model.config()).expect("config serialises"),
    );
    if let Some(opt) = optimizer {
        meta.insert(
            "optimizer".into(),
            serde_json::to_string(opt.config()).expect("serialises"),
        );
        meta.insert("optimizer_step".into(), opt.steps().to_string());
        for (state, flat) in opt.state() {
            for (info, v) in infos.iter().zip(split(infos, &flat.to_vec()?)?) {
                tensors.push((
                    format!("optimizer.{state}.{}", info.name),
                    info.shape.clone(),
                    v,
                ));
            }
        }
    }
    for (name, v) in extra {
        tensors.push((name.clone(), vec![v.len()], v.clone()));
    }
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, shape, v)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes(v)).expect("sizes match");
            (name.clone(), view)
        })
        .collect();
    let data = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::data(path.display(), format!("cannot serialise: {e}")))?;
    crate::files::write_atomically(path, &data)
}

/// Reads a checkpoint, checking that it holds exactly the tensors its configuration implies,
/// with their shapes and dtype.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let file = path.display();
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    check_extents(&data).map_err(|e| Error::data(&file, format!("not a safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&data)
        .map_err(|e| Error::data(&file, format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(Error::data(
            &file,
            format!("not a percept checkpoint (metadata format is not {FORMAT})"),
        ));
    }
    let json = |key: &str| -> Result<&String> {
        meta.get(key)
            .ok_or_else(|| Error::data(&file, format!("metadata lacks `{key}`")))
    };
    let config: ModelConfig = serde_json::from_str(json("model")?)
        .map_err(|e| Error::data(&file, format!("malformed model metadata: {e}")))?;
    let st = SafeTensors::deserialize(&data)
        .map_err(|e| Error::data(&file, format!("malformed: {e}")))?;
    let take = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let t = st
            .tensor(name)
            .map_err(|_| Error::data(&file, format!("tensor `{name}` is missing")))?;
        if t.dtype() != Dtype::F32 {
            return Err(Error::data(
                &file,
                format!("tensor `{name}` has dtype {:?}, expected F32", t.dtype()),
            ));
        }
        if t.shape() != shape {
            return Err(Error::data(
                &file,
                format!(
                    "tensor `{name}` has shape {:?}, expected {shape:?}",
                    t.shape()
                ),
            ));
        }
        Ok(bytemuck::pod_collect_to_vec(t.data()))
    };
    // The layout the configuration implies, from a network built on no device.
    let layout = config.layout()?;
    let params = layout
        .iter()
        .map(|(n, s)| take(n, s))
        .collect::<Result<Vec<_>>>()?;
    let optimizer = match meta.get("optimizer") {
        None => None,
        Some(text) => {
            let config: OptimizerConfig = serde_json::from_str(text)
                .map_err(|e| Error::data(&file, format!("malformed optimizer metadata: {e}")))?;
            let step = json("optimizer_step")?
                .parse()
                .map_err(|e| Error::data(&file, format!("malformed optimizer_step: {e}")))?;
            let mut state = Vec::new();
            for kind in Optimizer::state_names(config.kind) {
                let per_param = layout
                    .iter()
                    .map(|(n, s)| take(&format!("optimizer.{kind}.{n}"), s))
                    .collect::<Result<Vec<_>>>()?;
                state.push(per_param);
            }
            Some((config, step, state))
        }
    };
    // Everything that is neither a parameter nor optimizer state is an extra 1-D tensor.
    let mut extra = BTreeMap::new();
    let is_param = |name: &str| layout.iter().any(|(n, _)| n == name);
    for name in st.names() {
        if !is_param(name) && !name.starts_with("optimizer.") {
            let len = st
                .tensor(name)
                .map(|t| t.shape().iter().product::<usize>())
                .unwrap_or(0);
            extra.insert(name.to_string(), take(name, &[len])?);
        }
    }
    let metadata = meta
        .into_iter()
        .filter(|(k, _)| !["format", "model", "optimizer", "optimizer_step"].contains(&k.as_str()))
        .collect();
    Ok(Checkpoint {
        config,
        params,
        optimizer: optimizer.map(|(config, step, state)| OptimizerState {
            config,
            step,
            state,
        }),
        extra,
        metadata,
    })
}

/// Refuses a tensor whose data would end past the file. safetensors adds the tensors' extent to
/// the header's length unchecked, so claims near 2^64 bytes overflow there; anything else
/// malformed is left to it to report.
fn check_extents(data: &[u8]) -> std::result::Result<(), String> {
    let Some(n) = data.get(..8).and_then(|n| <[u8; 8]>::try_from(n).ok()) else {
        return Ok(());
    };
    let end = usize::try_from(u64::from_le_bytes(n))
        .ok()
        .and_then(|n| n.checked_add(8));
    let Some(header) = end.and_then(|end| data.get(8..end)) else {
        return Ok(());
    };
    let Ok(serde_json::Value::Object(entries)) = serde_json::from_slice(header) else {
        return Ok(());
    };
    let stored = (data.len() - 8 - header.len()) as u64;
    for (name, info) in &entries {
        let end = info.get("data_offsets").and_then(|o| o.get(1)?.as_u64());
        if let Some(end) = end.filter(|&end| end > stored) {
            return Err(format!(
                "tensor `{name}` claims data up to byte {end}, but the file holds {stored} bytes \
                 of data (truncated?)"
            ));
        }
    }
    Ok(())
}
