"""The merged workbook managers open: sheet data types and the renderer."""
