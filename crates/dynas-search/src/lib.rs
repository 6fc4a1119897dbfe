//! dynas-search
