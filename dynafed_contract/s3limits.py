"""S3's size limits, written once (PROTOCOLS.md §5; AWS S3 User Guide,
"Amazon S3 multipart upload limits")."""
from __future__ import annotations

#: CopyObject copies at most this much; beyond it a copy is multipart (UploadPartCopy)
COPY_OBJECT_LIMIT = 5 * 1024**3
#: smallest part but the last
MIN_PART_SIZE = 5 * 1024**2
#: largest part
MAX_PART_SIZE = 5 * 1024**3
#: most parts in one multipart upload
MAX_PARTS = 10_000
#: largest object
MAX_OBJECT_SIZE = 5 * 1024**4
