"""The one result structure every check returns, rendered by the CLI, console and Slack."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class CheckResult:
    """One check (or one phase of a check): what ran, whether it passed, and why not."""

    name: str
    ok: bool
    latency_ms: float | None = None
    detail: str = ""
    entry_id: str | None = None  # knowledge-base entry explaining a failure
    entry_title: str | None = None
    fix: list[str] = field(default_factory=list)  # first fix steps of that entry
    data: dict[str, object] = field(default_factory=dict)  # structured extras (models, cert, ...)


@dataclass
class CheckReport:
    """The results of one `check` invocation."""

    results: list[CheckResult] = field(default_factory=list)
    target: str = ""  # masked key, URL or model name: never a secret in clear

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "target": self.target, "results": [asdict(r) for r in self.results]}
