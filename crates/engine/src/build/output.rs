//! `-o`: where the built image goes besides the store.

use std::io::Write;

use model::{Digest, Reference};

use crate::error::{EngineError, Result};
use crate::Engine;

use super::Output;

impl Engine {
    /// `-o`: write the built image's files or an archive of it.
    pub(super) fn export_build(
        &self,
        image: &Digest,
        out: &Output,
        tags: &[Reference],
    ) -> Result<()> {
        let to_writer = |dest: &str| -> Result<Box<dyn Write>> {
            Ok(if dest == "-" {
                Box::new(std::io::stdout())
            } else {
                Box::new(std::io::BufWriter::new(
                    std::fs::File::create(dest)
                        .map_err(|e| EngineError::io(format!("creating {dest}"), e))?,
                ))
            })
        };
        match out {
            // Named and pushed by the caller.
            Output::Image { .. } => {}
            Output::Archive(format, dest, compress) => {
                let names: Vec<String> = if tags.is_empty() {
                    vec![image.to_string()]
                } else {
                    tags.iter().map(|t| t.to_string()).collect()
                };
                let mut w = to_writer(dest)?;
                self.store().save_with(&names, *format, &mut w, *compress)?;
                w.flush()
                    .map_err(|e| EngineError::io("writing the archive", e))?;
            }
            Output::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
                let view = crate::rootfs::View {
                    lower: self.store().layer_dirs(image)?,
                    upper: None,
                    copy: None,
                };
                let dir = dir.clone();
                self.in_rootfs(&view, move |root| {
                    let dst = store::fsops::open_dir(&dir)?;
                    store::fsops::copy_contents(
                        root,
                        std::os::fd::AsFd::as_fd(&dst),
                        &store::fsops::CopyOptions {
                            owner: None,
                            overwrite: true,
                            shift: None,
                        },
                    )
                })?;
            }
            Output::Tar(dest) => {
                let view = crate::rootfs::View {
                    lower: self.store().layer_dirs(image)?,
                    upper: None,
                    copy: None,
                };
                // The helper (a forked process) writes the tar itself.
                let dest = dest.clone();
                self.in_rootfs(&view, move |root| {
                    if dest == "-" {
                        let out = std::io::stdout();
                        let mut lock = out.lock();
                        store::fsops::tar_contents(root, None, &mut lock)?;
                        lock.flush()
                    } else {
                        let f = std::fs::File::create(&dest)?;
                        let mut w = std::io::BufWriter::new(f);
                        store::fsops::tar_contents(root, None, &mut w)?;
                        w.flush()
                    }
                })?;
            }
        }
        Ok(())
    }
}
