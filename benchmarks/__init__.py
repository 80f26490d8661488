"""auditmw benchmarks: ratios against the bare app, measured in one run."""
