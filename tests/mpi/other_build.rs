//! A different build for the identity check: `mpirun -n 1 pool mismatch : -n 2 other_build`
//! makes ranks 1 and 2 workers of another executable, which rank 0 must refuse by name.

/// Makes this build's contents differ from the test program's.
const MARK: &str = "parexec identity check: another build";

fn main() {
    parexec::init();
    println!("{}", std::hint::black_box(MARK));
}
