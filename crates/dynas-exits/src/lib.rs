//! dynas-exits
