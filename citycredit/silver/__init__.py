"""Silver: findings and appeals with every delivered version, the population snapshots, opt-outs;
as-known-at filters, who is scored, and the pseudonymisation at the boundary."""
