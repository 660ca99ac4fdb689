"""`hub central`: the district or provincial server hubs sync with (same package, own store)."""
