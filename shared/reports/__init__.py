"""The report writers: results.json's common keys and the atomic write (report), the
Markdown (markdown), its tables as CSV (tables), the figures as PNG and SVG (plots), the
console summary and exit status (summary) and the index of a folder of reports (index).
NumPy, the standard library and matplotlib."""
