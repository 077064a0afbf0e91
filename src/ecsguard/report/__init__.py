"""Report writers: one module per format in writers/, all rendering the same Finding list."""
