"""The copy function: verified server-side and streamed copies of objects,
with progress as CloudEvents and on an ndjson answer (README.md here)."""
