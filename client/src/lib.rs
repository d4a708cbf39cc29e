//! The client side of RSerPool (in progress).
