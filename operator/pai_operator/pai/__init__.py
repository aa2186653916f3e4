"""PAI AIWorkSpace client: signing, credentials, typed wire models, errors, rate limits.

Knows nothing of Kubernetes. Callers use `PaiClient` and reason about the exception classes in
`errors`, never about HTTP statuses.
"""

from pai_operator.pai.client import PaiClient, PaiClientConfig
from pai_operator.pai.credentials import (
    Credentials,
    CredentialsProvider,
    DefaultChainCredentialsProvider,
    StaticCredentialsProvider,
)
from pai_operator.pai.errors import (
    AuthError,
    ConflictError,
    CredentialsError,
    IncompleteListError,
    InvalidRequestError,
    ModelNotFoundError,
    NetworkError,
    NoCredentialsError,
    NotFoundError,
    PaiError,
    ServerError,
    StaleRequestError,
    ThrottledError,
    classify,
)
from pai_operator.pai.models import (
    CreateModelRequest,
    CreateModelResponse,
    CreateModelVersionRequest,
    CreateModelVersionResponse,
    Label,
    ListModelsRequest,
    ListModelsResponse,
    ListModelVersionsRequest,
    ListModelVersionsResponse,
    Model,
    ModelVersion,
    UpdateModelRequest,
    UpdateModelVersionRequest,
)

__all__ = [
    "AuthError",
    "ConflictError",
    "CreateModelRequest",
    "CreateModelResponse",
    "CreateModelVersionRequest",
    "CreateModelVersionResponse",
    "Credentials",
    "CredentialsError",
    "CredentialsProvider",
    "DefaultChainCredentialsProvider",
    "IncompleteListError",
    "InvalidRequestError",
    "Label",
    "ListModelVersionsRequest",
    "ListModelVersionsResponse",
    "ListModelsRequest",
    "ListModelsResponse",
    "Model",
    "ModelNotFoundError",
    "ModelVersion",
    "NetworkError",
    "NoCredentialsError",
    "NotFoundError",
    "PaiClient",
    "PaiClientConfig",
    "PaiError",
    "ServerError",
    "StaleRequestError",
    "StaticCredentialsProvider",
    "ThrottledError",
    "UpdateModelRequest",
    "UpdateModelVersionRequest",
    "classify",
]
