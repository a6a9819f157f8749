//! `reshape`: the same codes in the same order.

pub fn run(x: &[i8], y: &mut [i8]) {
    y.copy_from_slice(x);
}
