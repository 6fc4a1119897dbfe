//! dynas-dvfs
