"""I/O at the edges: the Delta table seam and the Spark session."""
