//! How many steps a build has, before it runs (the classic builder's
//! `Step N/TOTAL`).
use super::{load_dockerfile, BuildRequest, Builder};
use crate::{Engine, Result};

impl Engine {
    /// The steps `req` builds: for each stage the target needs, its FROM
    /// and its instructions — the numbers of the `#N` lines
    /// [`Engine::build`] prints.
    pub fn build_step_count(&self, req: &BuildRequest) -> Result<usize> {
        let (_, _, df) = load_dockerfile(req)?;
        let mut sink = std::io::sink();
        let b = Builder::new(self, req, df, &mut sink);
        let order = b.plan()?;
        Ok(order
            .iter()
            .map(|&i| b.df.stages[i].instructions.len() + 1)
            .sum())
    }
}
