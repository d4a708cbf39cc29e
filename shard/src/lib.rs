//! One shard of the handlespace (in progress).
