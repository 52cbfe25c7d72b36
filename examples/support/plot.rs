//! `--plot FILE.svg`: the plan's speedup curve as a picture, when the crate is built with its
//! `plot` feature.

use std::path::Path;

use parexec::Plan;

/// Writes the plan's picture to `path`, or says how to get a build that can.
///
/// # Errors
///
/// The build lacks the `plot` feature, the plan can't be drawn, or the file can't be written.
pub fn write(plan: &Plan, path: &Path) -> Result<(), String> {
    #[cfg(feature = "plot")]
    {
        let svg = plan
            .to_svg()
            .map_err(|e| format!("drawing the plan failed: {e}"))?;
        std::fs::write(path, svg).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("plan drawn to {}", path.display());
        Ok(())
    }
    #[cfg(not(feature = "plot"))]
    {
        let _ = plan;
        Err(format!(
            "cannot draw {}: this build has no plots; rebuild with `--features plot`",
            path.display()
        ))
    }
}
