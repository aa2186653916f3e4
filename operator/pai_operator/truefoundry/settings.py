"""TrueFoundry's section of the operator settings (joined in `registry.OperatorSettings`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from pai_operator.core_settings import setting


class TrueFoundrySettings(BaseModel):
    """TrueFoundry model versions (truefoundry.mlops.dev/v1alpha1): off unless a host is set; the
    API key comes from TFY_API_KEY (a Secret), never from a flag."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    truefoundry_host: str | None = setting(
        None, "TrueFoundry control-plane URL (e.g. https://myorg.truefoundry.cloud); when set, the "
        "operator also manages truefoundry.mlops.dev ModelVersions with the API key in TFY_API_KEY.",
        flag="--truefoundry-host", metavar="URL", chart="truefoundry.host",
        shown_default="unset: the TrueFoundry controller is off", pattern=r"^https?://\S+$",
    )  # fmt: skip
    truefoundry_api_prefix: Literal["/api/svc/v1", "/api/ml/v1"] = setting(
        "/api/svc/v1", "TrueFoundry API path prefix: /api/svc/v1 (the current SDK's) or /api/ml/v1 "
        "(the documented one); both serve the same routes.",
        flag="--truefoundry-api-prefix", metavar="PREFIX", chart="truefoundry.apiPrefix",
    )  # fmt: skip
