"""The implementation runner: executable steps, post-change checks."""
