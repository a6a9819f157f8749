//! Requantizer unit bench (filled in below).
