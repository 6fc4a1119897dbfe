//! Safetensors files of named `f32` tensors with string metadata: supernet weights, training
//! checkpoints (weights, optimizer momentum, step, RNG) and batch-norm statistics stores.
//!
//! Reading checks every tensor's presence, dtype, shape and finiteness and names the file and
//! the field at fault in the error. Files are written atomically (a temporary file in the same
//! directory, synced, then renamed over the target), and variables are only overwritten once
//! every tensor of the file has been read and checked.

use std::collections::HashMap;
use std::io::Write as _;
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
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|e| bad(path, "*", e.to_string()))?;
    write_atomic(path, |tmp| {
        let mut file = std::fs::File::create(tmp)?;
        file.write_all(&bytes)
    })
}

/// [`dynas_search::write_atomically_with`], its I/O errors as this crate's.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<()> {
    dynas_search::write_atomically_with(path, write).map_err(|e| match e {
        dynas_search::SearchError::Io { path, source } => SupernetError::io(path, source),
        other => other.into(),
    })
}

/// Saves every variable of `vs` to `path` atomically, in the format libtorch picks from the
/// extension (safetensors for `.safetensors`).
pub(crate) fn save_var_store(vs: &nn::VarStore, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| SupernetError::io(dir, e))?;
    }
    let mut failure = None;
    let outcome = write_atomic(path, |tmp| {
        vs.save(tmp).map_err(|e| {
            let message = e.to_string();
            failure = Some(message.clone());
            std::io::Error::other(message)
        })
    });
    match (outcome, failure) {
        (Err(_), Some(reason)) => Err(bad(path, "*", reason)),
        (outcome, _) => outcome,
    }
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
        let bytes =
            dynas_space::files::read_input(&path).map_err(|e| SupernetError::io(&path, e))?;
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
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad(
                &self.path,
                name,
                format!("value {i} is {} (weights must be finite)", values[i]),
            ));
        }
        Ok(Tensor::from_slice(&values).reshape(dims).to_device(device))
    }
}

/// Copies the tensors `prefix + name` of `path` into every variable of `vs`.
pub(crate) fn load_into(vs: &nn::VarStore, path: &Path, prefix: &str) -> Result<()> {
    let file = TensorFile::open(path)?;
    copy_vars(&file, vs, prefix)
}

/// Copies the tensors `prefix + name` of `file` into every variable of `vs`: all are read and
/// checked first, so a bad file leaves `vs` as it was.
pub fn copy_vars(file: &TensorFile, vs: &nn::VarStore, prefix: &str) -> Result<()> {
    let staged = read_vars(file, vs, prefix)?;
    assign(staged);
    Ok(())
}

/// Every variable of `vs` with its checked value `prefix + name` from `file` (nothing is
/// written yet).
pub(crate) fn read_vars(
    file: &TensorFile,
    vs: &nn::VarStore,
    prefix: &str,
) -> Result<Vec<(Tensor, Tensor)>> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars.into_iter()
        .map(|(name, var)| {
            let field = format!("{prefix}{name}");
            let t = file.tensor(&field, Some(&var.size()), var.device())?;
            Ok((var, t))
        })
        .collect()
}

/// Copies each staged value into its variable.
pub(crate) fn assign(staged: Vec<(Tensor, Tensor)>) {
    tch::no_grad(|| {
        for (var, value) in staged {
            let mut v = var.shallow_clone();
            v.copy_(&value);
        }
    });
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
        // Nothing is left next to the file.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&path, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
        assert!(matches!(
            TensorFile::open(&path),
            Err(SupernetError::Checkpoint { field, .. }) if field == "header"
        ));
    }

    #[test]
    fn non_finite_weights_are_refused_and_leave_the_variables_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let a = root.var("a", &[3], nn::Init::Const(1.0));
        let b = root.var("b", &[2], nn::Init::Const(2.0));
        let good_a = Tensor::from_slice(&[5.0f32, 6.0, 7.0]);
        let nan_b = Tensor::from_slice(&[f32::NAN, 0.0]);
        write_tensors(
            &path,
            &[("a".to_string(), good_a), ("b".to_string(), nan_b)],
            HashMap::new(),
        )
        .unwrap();
        let err = load_into(&vs, &path, "").unwrap_err();
        assert!(
            matches!(&err, SupernetError::Checkpoint { field, .. } if field == "b"),
            "{err}"
        );
        // `a` sorts first and is valid, but nothing was copied.
        assert!(a.equal(&Tensor::from_slice(&[1.0f32, 1.0, 1.0])));
        assert!(b.equal(&Tensor::from_slice(&[2.0f32, 2.0])));
    }
}
