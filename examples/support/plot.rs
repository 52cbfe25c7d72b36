//! `--plot FILE.svg`: the plan's speedup curve as a picture.

use std::path::Path;

use parexec::Plan;

/// Writes the plan's picture to `path`.
///
/// # Errors
///
/// The plan can't be drawn, or the file can't be written.
pub fn write(plan: &Plan, path: &Path) -> Result<(), String> {
    let svg = plan
        .to_svg()
        .map_err(|e| format!("drawing the plan failed: {e}"))?;
    std::fs::write(path, svg).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("plan drawn to {}", path.display());
    Ok(())
}
