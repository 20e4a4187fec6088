"""Write a small text-only PDF from our own lines (no library, no binary copied from elsewhere).

Headings are set in a larger bold font, as a word processor would; body lines in a plain one.
The content streams are not compressed, so the file stays readable in a diff.
"""

from __future__ import annotations

from pathlib import Path

PAGE_LINES = 46


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def write_pdf(path: Path, lines: list[tuple[str, str]]) -> Path:
    """Write `lines` ((style, text) with style "h1", "h2" or "p") as a PDF at `path`."""
    pages = [lines[i : i + PAGE_LINES] for i in range(0, len(lines), PAGE_LINES)] or [[]]
    objects: list[bytes] = []
    n_pages = len(pages)
    # 1 catalog, 2 page tree, 3 body font, 4 heading font, then (page, content) pairs.
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>")
    sizes = {"h1": 18, "h2": 14, "p": 10}
    for i, page in enumerate(pages):
        ops = ["BT", "50 800 Td"]
        for style, text in page:
            size = sizes[style]
            font = "/F2" if style != "p" else "/F1"
            ops.append(f"{font} {size} Tf 0 -{size + 6} Td ({_escape(text)}) Tj")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {6 + 2 * i} 0 R "
            "/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


RUNBOOK: list[tuple[str, str]] = [
    ("h1", "Vertex AI Gemini runbook for the data team"),
    ("p", "Steps the on-call engineer follows when a Gemini call on Vertex AI fails in our pipelines."),
    ("h2", "Quota exceeded for aiplatform"),
    ("p", "The job logs 429 RESOURCE_EXHAUSTED with a link to the Vertex error-code-429 page."),
    ("p", "- Spread the batch over more minutes and lower the number of workers."),
    ("p", "- Check the aiplatform.googleapis.com quota page and ask for more if it is always full."),
    ("p", "- Consider provisioned throughput for the nightly run."),
    ("h2", "Permission denied on the model endpoint"),
    ("p", "403 PERMISSION_DENIED: the service account of the job has no Vertex AI role."),
    ("p", "- Grant roles/aiplatform.user to the service account and rerun."),
    ("h2", "Vertex AI API has not been used in project"),
    ("p", "SERVICE_DISABLED: the API is off in the project the job runs in."),
    ("p", "- Run gcloud services enable aiplatform.googleapis.com and wait a few minutes."),
    ("h2", "Default credentials were not found"),
    ("p", "google.auth.exceptions.DefaultCredentialsError: Your default credentials were not found."),
    ("p", "- On a laptop run gcloud auth application-default login."),
    ("p", "- On the cluster attach the workload identity instead of copying key files."),
    ("h2", "Who to call"),
    ("p", "Page the data platform rotation if none of the above helps within thirty minutes."),
]


if __name__ == "__main__":  # regenerate the committed fixture
    write_pdf(Path(__file__).parent / "data" / "articles" / "vertex-runbook.pdf", RUNBOOK)
