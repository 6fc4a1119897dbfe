//! Safetensors files of named `f32` tensors with string metadata: supernet weights, training
//! checkpoints (weights, optimizer momentum, step, RNG) and batch-norm statistics stores.
//!
//! Reading checks every tensor's presence, dtype and shape and names the file and the field
//! at fault in the error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use tch::{Device, Kind, Tensor, nn};

use crate::error::{Result, SupernetError};

fn bad(path: &Path, field: impl Into<String>, reason: impl Into<String>) -> SupernetError {
    SupernetError::Checkpoint {
        path: path.to_path_buf(),
        field: field.into(),
        reason: reason.into(),
    }
}

/// Writes `tensors` (converted to `f32` on the CPU) and `metadata` to a safetensors file.
pub fn write_tensors(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let mut buffers = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t
            .detach()
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let values = Vec::<f32>::try_from(t.reshape([-1]))
            .map_err(|e| bad(path, name.as_str(), e.to_string()))?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        buffers.push((name.clone(), shape, bytes));
    }
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| bad(path, name.as_str(), e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| SupernetError::io(dir, e))?;
    }
    let tmp = path.with_extension("safetensors.tmp");
    safetensors::serialize_to_file(views, Some(metadata), &tmp)
        .map_err(|e| bad(path, "*", e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| SupernetError::io(path, e))
}

/// A safetensors file read into memory.
#[derive(Debug)]
pub struct TensorFile {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl TensorFile {
    /// Reads and validates the header of `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let bytes = std::fs::read(&path).map_err(|e| SupernetError::io(&path, e))?;
        SafeTensors::deserialize(&bytes).map_err(|e| bad(&path, "header", e.to_string()))?;
        Ok(Self { path, bytes })
    }

    fn parsed(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).expect("validated in open")
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names of the tensors.
    pub fn names(&self) -> Vec<String> {
        self.parsed()
            .names()
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// A metadata value; an error naming the key when it is missing.
    pub fn meta(&self, key: &str) -> Result<String> {
        let (_, meta) = SafeTensors::read_metadata(&self.bytes)
            .map_err(|e| bad(&self.path, "header", e.to_string()))?;
        meta.metadata()
            .as_ref()
            .and_then(|m| m.get(key).cloned())
            .ok_or_else(|| bad(&self.path, key, "metadata key is missing"))
    }

    /// A metadata value parsed from JSON.
    pub fn meta_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T> {
        let text = self.meta(key)?;
        serde_json::from_str(&text).map_err(|e| bad(&self.path, key, e.to_string()))
    }

    /// The tensor `name` as `f32` on `device`, checked against `shape` when given.
    pub fn tensor(&self, name: &str, shape: Option<&[i64]>, device: Device) -> Result<Tensor> {
        let st = self.parsed();
        let view = st
            .tensor(name)
            .map_err(|_| bad(&self.path, name, "tensor is missing"))?;
        if view.dtype() != Dtype::F32 {
            return Err(bad(
                &self.path,
                name,
                format!("dtype {:?}, expected F32", view.dtype()),
            ));
        }
        let dims: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        if let Some(shape) = shape
            && shape != dims.as_slice()
        {
            return Err(bad(
                &self.path,
                name,
                format!("shape {dims:?}, expected {shape:?}"),
            ));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Tensor::from_slice(&values).reshape(dims).to_device(device))
    }
}

/// Copies the tensors `prefix + name` of `path` into every variable of `vs`.
pub(crate) fn load_into(vs: &nn::VarStore, path: &Path, prefix: &str) -> Result<()> {
    let file = TensorFile::open(path)?;
    copy_vars(&file, vs, prefix)
}

/// Copies the tensors `prefix + name` of `file` into every variable of `vs`.
pub(crate) fn copy_vars(file: &TensorFile, vs: &nn::VarStore, prefix: &str) -> Result<()> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in vars {
        let field = format!("{prefix}{name}");
        let t = file.tensor(&field, Some(&var.size()), var.device())?;
        tch::no_grad(|| {
            let mut v = var.shallow_clone();
            v.copy_(&t);
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]);
        let meta = HashMap::from([("step".to_string(), "7".to_string())]);
        write_tensors(&path, &[("a".to_string(), a.shallow_clone())], meta).unwrap();
        let f = TensorFile::open(&path).unwrap();
        assert_eq!(f.meta("step").unwrap(), "7");
        let back = f.tensor("a", Some(&[2, 2]), Device::Cpu).unwrap();
        assert!(back.equal(&a));
        assert!(matches!(
            f.tensor("a", Some(&[4]), Device::Cpu),
            Err(SupernetError::Checkpoint { field, .. }) if field == "a"
        ));
        assert!(matches!(
            f.meta("rng"),
            Err(SupernetError::Checkpoint { field, .. }) if field == "rng"
        ));
        std::fs::write(&path, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
        assert!(matches!(
            TensorFile::open(&path),
            Err(SupernetError::Checkpoint { field, .. }) if field == "header"
        ));
    }
}
